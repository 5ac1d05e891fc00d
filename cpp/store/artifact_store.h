// ArtifactStore: content-addressed, compressed blobs under root/objects/.
// A blob is a list of segments (a pickle stream and its out-of-band buffers);
// its digest covers the segments, so equal values are stored once. Writes go
// to a temp file and are renamed into place: a crash never leaves a partial
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

class ArtifactStore {
 public:
  // `root` is the datastore root; blobs live in root/objects/ab/cdef....
  explicit ArtifactStore(std::string root);

  Result<PutResult> Put(std::span<const ByteView> segments);
  // kNotFound if absent; kCorruption if its content no longer matches.
  Result<std::unique_ptr<Blob>> Get(const std::string& digest) const;
  // Reads a one-segment blob (a bytes value) into memory the caller owns:
  // `allocate(size)` is called once with the segment's size and returns
  // where to put it (nullptr: out of memory). One copy from the page cache,
  // no mapping; the digest is verified on the copy, and on any error the
  // memory's content is unspecified. kInvalidArgument if the blob has
  // several segments (use Get).
  Status GetInto(const std::string& digest,
                 const std::function<uint8_t*(uint64_t size)>& allocate) const;
  bool Has(const std::string& digest) const;
  std::string PathOf(const std::string& digest) const;

 private:
  std::string root_;
};

}  // namespace cairn
