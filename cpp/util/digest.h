// Content digests: XXH3-128 from libxxhash, hex-encoded. Chosen over SHA-256
// by measurement (docs/datastore.md): ten times faster, and the digest names
// our own blobs, so it needs no resistance against a deliberate attacker.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

struct XXH3_state_s;  // libxxhash's, so this header need not include it

namespace cairn {

// A view of caller-owned bytes; one segment of an artifact.
struct ByteView {
  const void* data = nullptr;
  size_t size = 0;
};

// Length of a hex digest.
inline constexpr size_t kDigestHexSize = 32;

// Streaming XXH3-128. Not thread-safe; one per thread.
class Hasher {
 public:
  Hasher();
  ~Hasher();
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;

  void Update(const void* data, size_t size);
  // Hashes `value` as 8 little-endian bytes.
  void UpdateU64(uint64_t value);
  // The digest of everything so far, as 32 lowercase hex chars. Does not
  // reset: more Updates continue the same stream.
  std::string HexDigest() const;

 private:
  XXH3_state_s* state_;
};

// The digest of a segmented value, as ArtifactStore names blobs: it covers
// the segment count and each length before the bytes, so the same bytes
// split differently never share a digest.
std::string DigestOf(std::span<const ByteView> segments);

// Whether `s` looks like a digest (32 lowercase hex chars), so it is safe to
// turn into a path.
bool IsDigest(std::string_view s);

}  // namespace cairn
