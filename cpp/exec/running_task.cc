#include "exec/running_task.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>

#include "util/check.h"
#include "util/time.h"

namespace cairn {
namespace {

constexpr size_t kReadChunk = 64 * 1024;
// How long pipes may stay open after their process group was killed. Only a
// process that escaped the group can hold them that long.
constexpr double kDrainGraceS = 5.0;
// When giving up on a pipe, what is already buffered is still delivered, but
// a writer that keeps writing must not keep us here.
constexpr int kMaxFinalReads = 16;

void CloseFd(int* fd) {
  if (*fd >= 0) {
    close(*fd);
    *fd = -1;
  }
}

// Moves `*fd` to a number >= 4 (see TaskPipes).
Status MoveAbove3(int* fd) {
  if (*fd >= 4) return Status::OK();
  int moved = fcntl(*fd, F_DUPFD_CLOEXEC, 4);
  if (moved < 0) return Status::FromErrno(errno, "fcntl(F_DUPFD_CLOEXEC)");
  close(*fd);
  *fd = moved;
  return Status::OK();
}

}  // namespace

TaskPipes::~TaskPipes() {
  for (int i = 0; i < 3; ++i) {
    CloseFd(&read[i]);
    CloseFd(&write[i]);
  }
}

Status TaskPipes::Open() {
  for (int i = 0; i < 3; ++i) {
    int ends[2];
    if (pipe2(ends, O_CLOEXEC) != 0) return Status::FromErrno(errno, "pipe2");
    read[i] = ends[0];
    write[i] = ends[1];
    if (fcntl(read[i], F_SETFL, O_NONBLOCK) != 0) {
      return Status::FromErrno(errno, "fcntl(O_NONBLOCK)");
    }
    CAIRN_RETURN_IF_ERROR(MoveAbove3(&write[i]));
  }
  return Status::OK();
}

void TaskPipes::CloseWriteEnds() {
  for (int& fd : write) CloseFd(&fd);
}

void KillProcessGroup(pid_t pid) {
  if (pid > 0) kill(-pid, SIGKILL);
}

int OpenExitFd(pid_t pid) {
#ifdef SYS_pidfd_open
  // pidfds are always close-on-exec.
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  return -1;
#endif
}

RunningTasks::RunningTasks() : buffer_(kReadChunk) {}

RunningTasks::~RunningTasks() {
  for (auto& [key, task] : tasks_) Release(&task);
}

RunningTask* RunningTasks::Add(TaskKey key, double timeout_s) {
  CAIRN_CHECK(!Contains(key));
  RunningTask& task = tasks_[key];
  task.key = key;
  task.started_at = WallSeconds();
  if (timeout_s > 0) task.deadline = MonotonicSeconds() + timeout_s;
  return &task;
}

RunningTask* RunningTasks::Find(TaskKey key) {
  auto it = tasks_.find(key);
  return it == tasks_.end() ? nullptr : &it->second;
}

int RunningTasks::PollTimeout(int timeout_ms) const {
  double now = MonotonicSeconds();
  double nearest = -1;
  for (const auto& [key, task] : tasks_) {
    if (task.ended()) return 0;
    double d = 0;
    if (!task.exited && !task.timed_out) d = task.deadline;
    if (task.exited) d = task.drain_deadline;
    if (d > 0 && (nearest < 0 || d < nearest)) nearest = d;
  }
  if (nearest < 0) return timeout_ms;
  // Round up: waking a hair early would only spin through an empty round.
  double ms = std::ceil((nearest - now) * 1000.0);
  int until = ms <= 0 ? 0 : static_cast<int>(std::min(ms, 1e9));
  return timeout_ms < 0 ? until : std::min(timeout_ms, until);
}

void RunningTasks::AddPollFds(std::vector<pollfd>* pfds) {
  polled_.clear();
  first_polled_ = pfds->size();
  for (auto& [key, task] : tasks_) {
    for (int stream = 0; stream < 3; ++stream) {
      if (task.fds[stream] < 0) continue;
      pfds->push_back({task.fds[stream], POLLIN, 0});
      polled_.push_back({&task, stream});
    }
    if (task.exit_fd >= 0) {
      pfds->push_back({task.exit_fd, POLLIN, 0});
      polled_.push_back({&task, -1});
    }
  }
}

void RunningTasks::ReadReady(const std::vector<pollfd>& pfds, OutputSink* sink) {
  CAIRN_CHECK(pfds.size() >= first_polled_ + polled_.size());
  for (size_t i = 0; i < polled_.size(); ++i) {
    const Polled& p = polled_[i];
    // An exit fd only wakes poll(); the launcher checks the process itself.
    if (p.stream < 0 || pfds[first_polled_ + i].revents == 0) continue;
    ReadOnce(p.task, p.stream, sink);
  }
  polled_.clear();
}

bool RunningTasks::ReadOnce(RunningTask* task, int stream, OutputSink* sink) {
  ssize_t n = read(task->fds[stream], buffer_.data(), buffer_.size());
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return false;
  if (n <= 0) {
    // EOF, or an error that no retry will fix: either way nothing more comes.
    CloseFd(&task->fds[stream]);
    return false;
  }
  if (stream == RunningTask::kResult) {
    task->result.append(buffer_.data(), static_cast<size_t>(n));
  } else if (sink != nullptr) {
    sink->OnOutput(task->key, stream + 1,
                   std::string_view(buffer_.data(), static_cast<size_t>(n)));
  }
  return true;
}

void RunningTasks::MarkExited(RunningTask* task, int status) {
  task->exited = true;
  task->wait_status = status;
  task->drain_deadline = MonotonicSeconds() + kDrainGraceS;
  CloseFd(&task->exit_fd);
}

void RunningTasks::MarkLost(RunningTask* task) {
  task->lost = true;
  MarkExited(task, 0);
}

std::vector<RunningTask*> RunningTasks::TakeExpired() {
  std::vector<RunningTask*> expired;
  double now = MonotonicSeconds();
  for (auto& [key, task] : tasks_) {
    if (task.exited || task.timed_out || task.deadline <= 0) continue;
    if (now < task.deadline) continue;
    task.timed_out = true;
    expired.push_back(&task);
  }
  return expired;
}

void RunningTasks::CloseStalePipes(OutputSink* sink) {
  double now = MonotonicSeconds();
  for (auto& [key, task] : tasks_) {
    if (!task.exited || task.pipes_closed() || now < task.drain_deadline) continue;
    for (int stream = 0; stream < 3; ++stream) {
      for (int i = 0; i < kMaxFinalReads && task.fds[stream] >= 0; ++i) {
        if (!ReadOnce(&task, stream, sink)) break;
      }
      CloseFd(&task.fds[stream]);
    }
  }
}

std::vector<TaskExit> RunningTasks::TakeEnded() {
  std::vector<TaskExit> ended;
  for (auto it = tasks_.begin(); it != tasks_.end();) {
    RunningTask& task = it->second;
    if (!task.ended()) {
      ++it;
      continue;
    }
    TaskExit exit;
    exit.key = task.key;
    exit.result = std::move(task.result);
    exit.started_at = task.started_at;
    exit.finished_at = WallSeconds();
    int status = task.wait_status;
    if (!task.lost && WIFEXITED(status)) exit.exit_code = WEXITSTATUS(status);
    if (!task.lost && WIFSIGNALED(status)) exit.signal = WTERMSIG(status);
    if (task.lost) {
      exit.kind = ExitKind::kLost;
    } else if (task.timed_out) {
      exit.kind = ExitKind::kTimedOut;
    } else if (WIFEXITED(status)) {
      exit.kind = ExitKind::kExited;
    } else if (WIFSIGNALED(status)) {
      exit.kind = ExitKind::kSignaled;
    } else {
      exit.kind = ExitKind::kLost;
    }
    ended.push_back(std::move(exit));
    Release(&task);
    it = tasks_.erase(it);
  }
  return ended;
}

void RunningTasks::Release(RunningTask* task) {
  for (int& fd : task->fds) CloseFd(&fd);
  CloseFd(&task->exit_fd);
}

}  // namespace cairn
