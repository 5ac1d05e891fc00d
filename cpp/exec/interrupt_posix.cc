#include "exec/interrupt.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

namespace cairn {
namespace {

constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP};
constexpr int kNumSignals = sizeof(kSignals) / sizeof(kSignals[0]);

// The handler may only touch lock-free atomics; -1 when no catcher lives.
std::atomic<int> g_write_fd{-1};
static_assert(std::atomic<int>::is_always_lock_free);
struct sigaction g_previous[kNumSignals];

extern "C" void OnSignal(int sig) {
  int saved_errno = errno;
  int fd = g_write_fd.load(std::memory_order_relaxed);
  if (fd >= 0) {
    unsigned char byte = static_cast<unsigned char>(sig);
    // Non-blocking: with the pipe full, enough has been said already.
    ssize_t ignored = write(fd, &byte, 1);
    (void)ignored;
  }
  errno = saved_errno;
}

}  // namespace

Result<std::unique_ptr<InterruptCatcher>> InterruptCatcher::Install() {
  int ends[2];
  if (pipe2(ends, O_CLOEXEC | O_NONBLOCK) != 0) {
    return Status::FromErrno(errno, "pipe2 for the interrupt catcher");
  }
  int expected = -1;
  if (!g_write_fd.compare_exchange_strong(expected, ends[1])) {
    close(ends[0]);
    close(ends[1]);
    return Status::InvalidArgument(
        "another run in this process is already catching interrupts");
  }
  struct sigaction action = {};
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  // SA_RESTART spares other threads' slow calls an EINTR; the engine's own
  // poll() is never restarted and wakes on the pipe anyway.
  action.sa_flags = SA_RESTART;
  for (int i = 0; i < kNumSignals; ++i) {
    if (sigaction(kSignals[i], &action, &g_previous[i]) != 0) {
      Status status = Status::FromErrno(errno, "sigaction");
      for (int j = 0; j < i; ++j) sigaction(kSignals[j], &g_previous[j], nullptr);
      g_write_fd.store(-1);
      close(ends[0]);
      close(ends[1]);
      return status;
    }
  }
  return std::unique_ptr<InterruptCatcher>(new InterruptCatcher(ends[0], ends[1]));
}

InterruptCatcher::InterruptCatcher(int read_fd, int write_fd)
    : read_fd_(read_fd), write_fd_(write_fd) {}

InterruptCatcher::~InterruptCatcher() {
  for (int i = 0; i < kNumSignals; ++i) sigaction(kSignals[i], &g_previous[i], nullptr);
  g_write_fd.store(-1);
  close(read_fd_);
  close(write_fd_);
}

int InterruptCatcher::signal() {
  unsigned char bytes[64];
  ssize_t n;
  while ((n = read(read_fd_, bytes, sizeof(bytes))) > 0 ||
         (n < 0 && errno == EINTR)) {
    if (n > 0 && signal_ == 0) signal_ = bytes[0];
  }
  return signal_;
}

}  // namespace cairn
