// ArtifactStore: content-addressed, compressed blobs under root/objects/.
// A blob is a list of segments (a pickle stream and its out-of-band buffers);
// its digest covers the segments, so equal values are stored once. Writes go
// to a temp file (root/objects/tmp/) and are renamed into place: a crash never leaves a partial
// blob under its final name, and writing a blob twice is harmless. Reads
// verify the digest. Safe to use from several processes at once.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "util/digest.h"  // ByteView, shared with the digest helpers
#include "util/result.h"

namespace cairn {

struct PutResult {
  std::string digest;       // hex
  uint64_t size = 0;        // logical bytes (sum of segments)
  uint64_t stored_size = 0; // bytes on disk (0 if it was already there)
  bool existed = false;
};

// A blob read back. Owns its memory (a private, copy-on-write mapping of the
// file for raw blobs, or anonymous memory for compressed ones). Segments are
// writable views into it; writing copies only the pages written.
class Blob {
 public:
  virtual ~Blob() = default;
  virtual size_t segment_count() const = 0;
  virtual std::span<uint8_t> segment(size_t i) = 0;
};

// The bytes a raw blob's file holds, decided as Put decides them but without
// writing anything: `header`, then segment i at `offsets[i]` bytes into the
// body, zero bytes in between, `file_size` bytes in all. A value Put would
// compress has no such plan (raw is false): its bytes exist once written.
// Lets a remote store receive the blob's exact file while Put writes it.
struct RawBlobPlan {
  std::string digest;  // hex, as Put returns it
  bool raw = false;
  std::vector<uint8_t> header;
  std::vector<uint64_t> offsets;
  uint64_t file_size = 0;
};
RawBlobPlan PlanRawBlob(std::span<const ByteView> segments);

class ArtifactStore {
 public:
  // `root` is the datastore root; blobs live in root/objects/ab/cdef....
  explicit ArtifactStore(std::string root);

  // Stores the value, or reuses its existing blob if that is sound: a
  // damaged blob (cut short, garbled, or marked bad by a failed Get) is
  // written again, which repairs it for every run that refers to it.
  Result<PutResult> Put(std::span<const ByteView> segments);
  // kNotFound if absent; kCorruption if its content no longer matches (and
  // then the blob is marked bad, so that the next Put of it rewrites it).
  Result<std::unique_ptr<Blob>> Get(const std::string& digest) const;
  // Reads a one-segment blob (a bytes value) into memory the caller owns:
  // `allocate(size)` is called once with the segment's size and returns
  // where to put it (nullptr: out of memory). One copy from the page cache,
  // no mapping; the digest is verified on the copy, and on any error the
  // memory's content is unspecified. A big read runs on two threads.
  // kInvalidArgument if the blob has several segments (use Get).
  Status GetInto(const std::string& digest,
                 const std::function<uint8_t*(uint64_t size)>& allocate) const;
  bool Has(const std::string& digest) const;
  std::string PathOf(const std::string& digest) const;
  // Where blobs are written before being renamed into place: root/objects/tmp.
  std::string TempDir() const;

 private:
  bool ExistingIsSound(const std::string& path, const std::string& digest,
                       std::span<const ByteView> segments, uint64_t size) const;
  std::string TempPathFor(const std::string& digest) const;

  std::string root_;
};

}  // namespace cairn
