// InterruptCatcher: turns SIGINT, SIGTERM and SIGHUP into a readable fd, so
// the engine's poll() loop (Launcher::Wait's wake_fd) stops cleanly on Ctrl-C.
#pragma once

#include <memory>

#include "util/result.h"

namespace cairn {

// While it lives, SIGINT, SIGTERM and SIGHUP no longer reach their previous
// handlers (Python's among them): each writes its number to a self-pipe.
// Destruction restores the previous handlers. Signals are process-wide, so
// at most one catcher may exist at a time. Single threaded, apart from the
// handler itself, which only write()s.
class InterruptCatcher {
 public:
  // InvalidArgument if another catcher is installed (two runs at once in
  // one process).
  static Result<std::unique_ptr<InterruptCatcher>> Install();
  ~InterruptCatcher();
  InterruptCatcher(const InterruptCatcher&) = delete;
  InterruptCatcher& operator=(const InterruptCatcher&) = delete;

  // Readable once a signal was caught; interrupted() and signal() drain it,
  // so only new signals wake poll() again.
  int fd() const { return read_fd_; }
  bool interrupted() { return signal() != 0; }
  // The first signal caught, or 0.
  int signal();

 private:
  InterruptCatcher(int read_fd, int write_fd);

  int read_fd_;
  int write_fd_;
  int signal_ = 0;
};

}  // namespace cairn
