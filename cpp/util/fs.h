// Small POSIX file helpers that return Status instead of throwing or setting
// errno; errno becomes Status::FromErrno (ENOSPC → kNoSpace).
#pragma once

#include <sys/uio.h>

#include <span>
#include <string>
#include <string_view>

#include "util/result.h"

namespace cairn {

// Creates `path` and any missing parents; OK if it already is a directory.
Status MakeDirs(const std::string& path);

// Writes `contents` to a unique temp file next to `path`, then renames it
// over `path`: readers see the old file or the new one, never a mix. The
// temp file is removed on failure. No fsync: survives a process crash, not
// necessarily a power loss.
Status WriteFileAtomic(const std::string& path, std::string_view contents);

Result<std::string> ReadFile(const std::string& path);

// kNotFound if `path` does not exist.
Status RemoveFile(const std::string& path);

bool Exists(const std::string& path);

// Owns a file descriptor and closes it on destruction; for descriptors whose
// close() cannot report anything the caller still cares about (reads).
class ScopedFd {
 public:
  explicit ScopedFd(int fd) : fd_(fd) {}
  ~ScopedFd();
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// A name for a temp file in the same directory as `path` (so a rename to
// `path` stays on one filesystem), unique across processes and threads:
// "<dir>/.<base>.tmp-<pid>-<counter>-<random>".
std::string UniqueTempPath(const std::string& path);

// Writes all of `iov` to `fd`, retrying short writes and EINTR. `iov` is
// consumed (its entries are advanced). `what` names the file in errors.
Status WriteAllV(int fd, std::span<iovec> iov, std::string_view what);
Status WriteAll(int fd, const void* data, size_t size, std::string_view what);

}  // namespace cairn
