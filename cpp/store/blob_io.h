// Blob file I/O for big blobs: two-thread copies into a file's mapping,
// two-thread hashed reads, and the pread and madvise helpers the artifact
// store shares.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "util/digest.h"
#include "util/status.h"

namespace cairn {

// The size of a huge page.
inline constexpr size_t kHugePageSize = 2u << 20;

// One contiguous piece of a file: `size` bytes from `src` at file offset
// `offset`.
struct FilePiece {
  size_t offset;
  const uint8_t* src;
  size_t size;
};

// Copies `pieces` (file_size bytes in all) into the file, which must be
// open read-write and already that long (preallocated), through shared
// mappings: two threads each copy one contiguous share, a window of 8 MiB at
// a time, dropping each window from the mapping once copied (its pages stay
// in the page cache, dirty), so the writer's RSS grows by a window per
// thread, not by the blob. Filling fresh page cache is the whole cost of a
// big store, and two threads do it in about half the time on the
// development VM. pwrite() in 8 MiB windows was measured against it: it
// leaves the file in 2 MiB page-cache folios, which a reader maps in under
// 1 ms instead of ~0.13 s a GiB, but on this VM (free memory returned to the
// host in 2 MiB blocks) it made a 1 GiB store slower and erratic
// (docs/datastore.md).
Status CopyIntoFile(int fd, const std::vector<FilePiece>& pieces, size_t file_size, const std::string& what);

// pread()s exactly `size` bytes at `offset`; a file that ends first is
// kCorruption (it shrank while being read).
Status ReadExactly(int fd, void* buf, size_t size, uint64_t offset, const std::string& path);

// Reads `size` bytes at file offset `offset` into `out` (fresh memory the
// caller owns) and feeds them to `hasher` in order. From 16 MiB on, two
// threads share the 2 MiB chunks, each hashing a chunk right after reading
// it, in turn, each chunk's pages populated for writing in one madvise first
// (filling fresh pages is most of a read's cost, and two threads fill them
// faster).
Status ReadHashed(int fd, uint64_t offset, uint8_t* out, uint64_t size, const std::string& path,
                  Hasher& hasher);

// Maps the pages of a file mapping read-only ahead of use (one call instead
// of a fault per 16 pages, one entry per huge folio). Never copies, even for
// a writable private mapping. Only a hint: does nothing before Linux 5.14.
void PopulateRead(void* addr, size_t size);

}  // namespace cairn
