// The blob file format that ArtifactStore writes (artifact_store.cc) and
// reads (artifact_store_read.cc): its constants, byte order and segment
// layout. Private to those two files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace cairn {

// The blob file format (docs/datastore.md), all integers little-endian:
//   "CAIRNBLB" | u32 format version | u32 codec | u64 segment count |
//   u64 logical size | u64 length per segment | zero padding to kAlign
// then the body. A raw body holds each segment at a kAlign-aligned offset,
// so a mapped segment is as aligned as numpy wants it; a zstd body is one
// zstd frame of the segments back to back.
inline constexpr char kMagic[8] = {'C', 'A', 'I', 'R', 'N', 'B', 'L', 'B'};
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr size_t kFixedHeaderSize = 32;
inline constexpr size_t kAlign = 64;
enum Codec : uint32_t { kRaw = 0, kZstd = 1 };
// Next to a blob that a failed Get found damaged: path + kBadSuffix.
inline constexpr char kBadSuffix[] = ".bad";

inline size_t AlignUp(size_t n) { return (n + kAlign - 1) & ~(kAlign - 1); }

inline void PutU32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline void PutU64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline uint32_t GetU32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
inline uint64_t GetU64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Where each segment starts in a raw body, or in a decompressed buffer,
// relative to the start of the body; `end` is the size of the whole body.
struct Layout {
  std::vector<size_t> offsets;
  size_t end = 0;
};

inline Layout LayOut(const std::vector<uint64_t>& lengths) {
  Layout layout;
  layout.offsets.reserve(lengths.size());
  for (uint64_t length : lengths) {
    layout.end = AlignUp(layout.end);
    layout.offsets.push_back(layout.end);
    layout.end += length;
  }
  return layout;
}

}  // namespace cairn
