// DiskReserve: space an engine sets aside when its run starts, so that the
// last writes of a run (marking it failed, recording its tasks) still fit
// once the datastore's disk is full.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "util/result.h"

namespace cairn {

// Enough for the run's end and a batch of task records; on a small file
// system a 16th of its size instead (docs/failures.md, "A full disk").
inline constexpr int64_t kDiskReserveBytes = 4 << 20;

// A preallocated file `<dir>/<pid>` (blocks really allocated, not sparse).
// Release() deletes it, freeing its blocks for the writes that follow; the
// destructor deletes it too. One per engine; Create also removes the
// reserves of engines that no longer run (killed ones leave theirs).
// Not thread-safe.
class DiskReserve {
 public:
  // Reserves `bytes`, or a 16th of the file system's size if that is less.
  // kNoSpace if the disk has no room for it.
  static Result<std::unique_ptr<DiskReserve>> Create(const std::string& dir,
                                                     int64_t bytes = kDiskReserveBytes);
  ~DiskReserve();
  DiskReserve(const DiskReserve&) = delete;
  DiskReserve& operator=(const DiskReserve&) = delete;

  // Frees the space; false if it was already released.
  bool Release();
  const std::string& path() const { return path_; }

 private:
  explicit DiskReserve(std::string path) : path_(std::move(path)) {}
  std::string path_;
  bool held_ = true;
};

}  // namespace cairn
