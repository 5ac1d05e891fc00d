#include "store/disk_reserve.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "util/fs.h"

namespace cairn {
namespace {

// Reserves named after a pid that is no longer running: their engine was
// killed. A reused pid keeps a stale one alive until it too is gone.
void RemoveStale(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return;
  while (dirent* entry = ::readdir(d)) {
    const char* name = entry->d_name;
    size_t len = std::strlen(name);
    pid_t pid = 0;
    auto [end, ec] = std::from_chars(name, name + len, pid);
    if (ec != std::errc() || end != name + len || pid <= 0) continue;
    if (::kill(pid, 0) != 0 && errno == ESRCH) ::unlink((dir + "/" + name).c_str());
  }
  ::closedir(d);
}

}  // namespace

Result<std::unique_ptr<DiskReserve>> DiskReserve::Create(const std::string& dir, int64_t bytes) {
  CAIRN_RETURN_IF_ERROR(MakeDirs(dir));
  RemoveStale(dir);
  struct statvfs fs {};
  if (::statvfs(dir.c_str(), &fs) == 0) {
    int64_t size = static_cast<int64_t>(fs.f_blocks) * static_cast<int64_t>(fs.f_frsize);
    bytes = std::min(bytes, size / 16 / 4096 * 4096);
  }
  std::string path = dir + "/" + std::to_string(::getpid());
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno(errno, "creating the disk reserve " + path);
  int err = ::posix_fallocate(fd, 0, bytes);
  ::close(fd);
  if (err != 0) {
    ::unlink(path.c_str());
    return Status::FromErrno(err, "reserving " + std::to_string(bytes >> 10) + " KiB in " + dir);
  }
  return std::unique_ptr<DiskReserve>(new DiskReserve(std::move(path)));
}

DiskReserve::~DiskReserve() { Release(); }

bool DiskReserve::Release() {
  if (!held_) return false;
  held_ = false;
  return ::unlink(path_.c_str()) == 0;
}

}  // namespace cairn
