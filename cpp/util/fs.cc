#include "util/fs.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <random>

namespace cairn {

ScopedFd::~ScopedFd() {
  if (fd_ >= 0) ::close(fd_);
}

Status MakeDirs(const std::string& path) {
  if (path.empty()) return Status::InvalidArgument("MakeDirs: empty path");
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return Status::OK();
    return Status::IOError(path + ": exists and is not a directory");
  }
  size_t slash = path.find_last_of('/');
  if (slash != std::string::npos && slash > 0) {
    CAIRN_RETURN_IF_ERROR(MakeDirs(path.substr(0, slash)));
  }
  // EEXIST: another process made it between our stat and mkdir.
  if (::mkdir(path.c_str(), 0777) != 0 && errno != EEXIST) {
    return Status::FromErrno(errno, "mkdir " + path);
  }
  return Status::OK();
}

std::string UniqueTempPath(const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  // The pid tells processes apart (a forked child inherits the counter and
  // the generator); the counter tells calls apart; the random part keeps a
  // reused pid from meeting a crashed writer's leftover temp file.
  thread_local std::mt19937_64 rng{std::random_device{}()};
  size_t slash = path.find_last_of('/');
  std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  char suffix[80];
  std::snprintf(suffix, sizeof(suffix), ".tmp-%ld-%llu-%016llx",
                static_cast<long>(::getpid()),
                static_cast<unsigned long long>(counter.fetch_add(1)),
                static_cast<unsigned long long>(rng()));
  return dir + "." + base + suffix;
}

Status WriteAllV(int fd, std::span<iovec> iov, std::string_view what) {
  size_t first = 0;
  while (first < iov.size()) {
    if (iov[first].iov_len == 0) {
      ++first;
      continue;
    }
    int count = static_cast<int>(std::min<size_t>(iov.size() - first, IOV_MAX));
    ssize_t n = ::writev(fd, &iov[first], count);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "write " + std::string(what));
    }
    size_t left = static_cast<size_t>(n);
    while (left > 0) {
      size_t take = std::min(left, iov[first].iov_len);
      iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + take;
      iov[first].iov_len -= take;
      left -= take;
      if (iov[first].iov_len == 0) ++first;
    }
  }
  return Status::OK();
}

Status WriteAll(int fd, const void* data, size_t size, std::string_view what) {
  iovec one{const_cast<void*>(data), size};
  return WriteAllV(fd, std::span<iovec>(&one, 1), what);
}

Status WriteFileAtomic(const std::string& path, std::string_view contents) {
  std::string tmp = UniqueTempPath(path);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0) return Status::FromErrno(errno, "create " + tmp);
  Status s = WriteAll(fd, contents.data(), contents.size(), tmp);
  // close() can report a deferred write error (NFS), so it counts.
  if (::close(fd) != 0 && s.ok()) s = Status::FromErrno(errno, "close " + tmp);
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    s = Status::FromErrno(errno, "rename " + tmp + " to " + path);
  }
  if (!s.ok()) ::unlink(tmp.c_str());
  return s;
}

Result<std::string> ReadFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound(path + ": no such file");
    return Status::FromErrno(errno, "open " + path);
  }
  ScopedFd closer(fd);
  std::string contents;
  struct stat st;
  if (::fstat(fd, &st) == 0 && st.st_size > 0) contents.reserve(st.st_size);
  char buf[64 * 1024];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "read " + path);
    }
    contents.append(buf, static_cast<size_t>(n));
  }
  return contents;
}

Status RemoveFile(const std::string& path) {
  if (::unlink(path.c_str()) == 0) return Status::OK();
  if (errno == ENOENT) return Status::NotFound(path + ": no such file");
  return Status::FromErrno(errno, "remove " + path);
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace cairn
