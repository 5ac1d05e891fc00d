// Blob file I/O for big blobs: two-thread writes that leave the page cache
// in huge folios, two-thread hashed reads, and the pread and madvise helpers
// the artifact store shares.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "util/digest.h"
#include "util/status.h"

namespace cairn {

// The page size of huge pages and of the huge folios big writes aim for.
inline constexpr size_t kHugePageSize = 2u << 20;

// One contiguous piece of a file: `size` bytes from `src` at file offset
// `offset`. The pieces handed to WriteShares cover the file end to end.
struct FilePiece {
  size_t offset;
  const uint8_t* src;
  size_t size;
};

// Writes `pieces` (file_size bytes in all) with pwritev, two threads each
// writing one contiguous share of the file in 8 MiB windows that start on
// 2 MiB boundaries. Windows that cover whole 2 MiB ranges leave the file in
// huge page-cache folios on file systems that have them (ext4, XFS), which a
// reader maps with one page-table entry per 2 MiB. Nothing is mapped, so the
// writer's RSS does not grow.
Status WriteShares(int fd, const std::vector<FilePiece>& pieces, size_t file_size, const std::string& what);

// pread()s exactly `size` bytes at `offset`; a file that ends first is
// kCorruption (it shrank while being read).
Status ReadExactly(int fd, void* buf, size_t size, uint64_t offset, const std::string& path);

// Reads `size` bytes at file offset `offset` into `out` (fresh memory the
// caller owns) and feeds them to `hasher` in order. From 16 MiB on, two
// threads share the 2 MiB chunks, each hashing a chunk right after reading
// it, in turn (filling fresh pages is most of a read's cost, and two threads
// fill them faster).
Status ReadHashed(int fd, uint64_t offset, uint8_t* out, uint64_t size, const std::string& path,
                  Hasher& hasher);

// Maps the pages of a file mapping read-only ahead of use (one call instead
// of a fault per 16 pages, one entry per huge folio). Never copies, even for
// a writable private mapping. Only a hint: does nothing before Linux 5.14.
void PopulateRead(void* addr, size_t size);

}  // namespace cairn
