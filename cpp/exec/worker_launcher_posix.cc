#include "exec/worker_launcher.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <limits>
#include <thread>

#include <nlohmann/json.hpp>

#include "util/time.h"

namespace cairn {
namespace {

constexpr size_t kReadChunk = 64 * 1024;
// Without a pidfd for the worker, its death is only noticed by polling (a
// dead worker's socket may stay open if a child of it inherited the socket).
constexpr int kWorkerPollMs = 100;
// How long the destructor lets the worker exit on EOF before killing it.
constexpr double kWorkerGraceS = 2.0;

void AppendU32(std::string* out, uint32_t value) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

Result<std::string> BuildFrame(const TaskCommand& command) {
  nlohmann::json env = nlohmann::json::object();
  for (const std::string& entry : command.env) {
    size_t eq = entry.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Status::InvalidArgument("task " + std::to_string(command.key) +
                                     ": env entry is not NAME=value: " + entry);
    }
    env[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  std::string header;
  try {
    header = nlohmann::json{{"key", command.key}, {"env", env}, {"preload", command.preload}}.dump();
  } catch (const nlohmann::json::exception& e) {
    // dump() throws on invalid UTF-8, which JSON cannot carry.
    return Status::InvalidArgument("task " + std::to_string(command.key) +
                                   ": env cannot be sent as JSON: " + e.what());
  }
  constexpr size_t kMax = std::numeric_limits<uint32_t>::max();
  if (header.size() > kMax || command.payload.size() > kMax) {
    return Status::InvalidArgument("task " + std::to_string(command.key) +
                                   ": request too large for the worker protocol");
  }
  std::string frame;
  frame.reserve(8 + header.size() + command.payload.size());
  AppendU32(&frame, static_cast<uint32_t>(header.size()));
  AppendU32(&frame, static_cast<uint32_t>(command.payload.size()));
  frame += header;
  frame += command.payload;
  return frame;
}

}  // namespace

WorkerLauncher::WorkerLauncher(int socket_fd, pid_t worker_pid)
    : WorkerLauncher(socket_fd, worker_pid, /*local_pids=*/true) {}

WorkerLauncher::WorkerLauncher(int socket_fd, pid_t worker_pid, bool local_pids)
    : socket_fd_(socket_fd),
      worker_pid_(worker_pid),
      local_pids_(local_pids),
      worker_exit_fd_(OpenExitFd(worker_pid)),
      buffer_(kReadChunk) {}

WorkerLauncher::~WorkerLauncher() {
  KillAll();
  if (socket_fd_ >= 0) close(socket_fd_);
  ReapWorker();
  if (worker_exit_fd_ >= 0) close(worker_exit_fd_);
}

Status WorkerLauncher::Start(const TaskCommand& command) {
  if (worker_gone_) return Status::IOError("the worker process is gone");
  if (tasks_.Contains(command.key)) {
    return Status::InvalidArgument("task " + std::to_string(command.key) +
                                   " is already running");
  }
  CAIRN_ASSIGN_OR_RETURN(std::string frame, BuildFrame(command));
  TaskPipes pipes;
  CAIRN_RETURN_IF_ERROR(pipes.Open());
  Status sent = SendRequest(frame, pipes.write);
  // The worker holds its own copies now; ours would keep the pipes from EOF.
  pipes.CloseWriteEnds();
  if (!sent.ok()) {
    LoseWorker();
    return sent;
  }
  RunningTask* task = tasks_.Add(command.key, command.timeout_s);
  for (int i = 0; i < 3; ++i) std::swap(task->fds[i], pipes.read[i]);
  return Status::OK();
}

Status WorkerLauncher::SendRequest(const std::string& frame, const int* fds) {
  alignas(cmsghdr) char control[CMSG_SPACE(3 * sizeof(int))];
  size_t sent = 0;
  while (sent < frame.size()) {
    iovec iov{const_cast<char*>(frame.data()) + sent, frame.size() - sent};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (sent == 0 && fds != nullptr) {
      // Until the first byte is out, the fds have not been sent either.
      std::memset(control, 0, sizeof(control));
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
      cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
      cmsg->cmsg_level = SOL_SOCKET;
      cmsg->cmsg_type = SCM_RIGHTS;
      cmsg->cmsg_len = CMSG_LEN(3 * sizeof(int));
      std::memcpy(CMSG_DATA(cmsg), fds, 3 * sizeof(int));
    }
    // MSG_NOSIGNAL: a dead worker must give EPIPE, not kill the host process.
    ssize_t n = sendmsg(socket_fd_, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        // The caller may have handed us a non-blocking socket.
        pollfd p{socket_fd_, POLLOUT, 0};
        if (poll(&p, 1, -1) < 0 && errno != EINTR) {
          return Status::FromErrno(errno, "poll on the worker socket");
        }
        continue;
      }
      return Status::FromErrno(errno, "sending a task to the worker");
    }
    sent += static_cast<size_t>(n);
  }
  return Status::OK();
}

Result<std::vector<TaskExit>> WorkerLauncher::Wait(int timeout_ms, int wake_fd,
                                                   OutputSink* sink) {
  int poll_ms = tasks_.PollTimeout(timeout_ms);
  pfds_.clear();
  tasks_.AddPollFds(&pfds_);
  constexpr size_t kNone = static_cast<size_t>(-1);
  size_t socket_index = kNone;
  size_t worker_index = kNone;
  if (!worker_gone_) {
    socket_index = pfds_.size();
    pfds_.push_back({socket_fd_, POLLIN, 0});
    if (worker_exit_fd_ >= 0) {
      worker_index = pfds_.size();
      pfds_.push_back({worker_exit_fd_, POLLIN, 0});
    } else if (tasks_.size() > 0) {
      poll_ms = poll_ms < 0 ? kWorkerPollMs : std::min(poll_ms, kWorkerPollMs);
    }
  }
  if (wake_fd >= 0) pfds_.push_back({wake_fd, POLLIN, 0});
  if (pfds_.empty() && poll_ms < 0) return std::vector<TaskExit>{};

  if (poll(pfds_.data(), pfds_.size(), poll_ms) < 0) {
    if (errno != EINTR) return Status::FromErrno(errno, "poll");
    for (pollfd& p : pfds_) p.revents = 0;
  }
  tasks_.ReadReady(pfds_, sink);

  Status status;
  bool got_data = false;
  if (socket_index != kNone && pfds_[socket_index].revents != 0) {
    status = ReadReplies(&got_data);
  }
  if (!worker_gone_) {
    // A readable pidfd is final even if the worker is not ours to reap.
    bool exited = worker_index != kNone ? pfds_[worker_index].revents != 0
                                        : WorkerExited();
    if (exited) {
      WorkerExited();  // reaps it
      // Replies it sent before dying still count: a task it reaped exited.
      do {
        status = ReadReplies(&got_data);
      } while (status.ok() && got_data && !worker_gone_);
      LoseWorker();
    }
  }

  for (RunningTask* task : tasks_.TakeExpired()) KillTask(task);
  tasks_.CloseStalePipes(sink);
  if (!status.ok()) return status;
  return tasks_.TakeEnded();
}

void WorkerLauncher::Kill(TaskKey key) {
  RunningTask* task = tasks_.Find(key);
  if (task == nullptr || task->exited) return;
  if (task->pid > 0) {
    KillProcessGroup(task->pid);
  } else {
    task->kill_pending = true;
  }
}

void WorkerLauncher::KillAll() {
  for (auto& [key, task] : tasks_.tasks()) {
    if (!task.exited) KillTask(&task);
  }
}

void WorkerLauncher::KillTask(RunningTask* task) {
  if (task->pid > 0) {
    KillProcessGroup(task->pid);
  } else {
    task->kill_pending = true;
  }
}

Status WorkerLauncher::ReadReplies(bool* got_data) {
  *got_data = false;
  if (worker_gone_) return Status::OK();
  ssize_t n = recv(socket_fd_, buffer_.data(), buffer_.size(), MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    return Status::OK();
  }
  if (n <= 0) {
    // EOF or a reset: the worker is gone or has given up on us.
    LoseWorker();
    return Status::OK();
  }
  *got_data = true;
  replies_.append(buffer_.data(), static_cast<size_t>(n));
  size_t start = 0;
  for (size_t eol; (eol = replies_.find('\n', start)) != std::string::npos;
       start = eol + 1) {
    Status status = HandleReply(std::string_view(replies_).substr(start, eol - start));
    if (!status.ok()) {
      LoseWorker();
      return status;
    }
  }
  replies_.erase(0, start);
  return Status::OK();
}

Status WorkerLauncher::HandleReply(std::string_view line) {
  nlohmann::json reply;
  try {
    reply = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception&) {
    return Status::Corruption("malformed reply from the worker: " + std::string(line));
  }
  auto integer = [&reply](const char* name) {
    auto it = reply.find(name);
    return it != reply.end() && it->is_number_integer();
  };
  auto flag = [&reply](const char* name) {
    auto it = reply.find(name);
    return it != reply.end() && it->is_boolean() && it->get<bool>();
  };
  bool lost = reply.is_object() && flag("lost");
  bool started = reply.is_object() && flag("started");
  if (!reply.is_object() || !integer("key") ||
      (!integer("pid") && !integer("status") && !lost && !started)) {
    return Status::Corruption("unexpected reply from the worker: " + std::string(line));
  }
  // A key we do not know cannot be acted on; the worker cannot be wrong in
  // a way that would hurt us here, so it is ignored.
  RunningTask* task = tasks_.Find(reply["key"].get<TaskKey>());
  if (task == nullptr || task->exited) return Status::OK();
  if (lost) {
    tasks_.MarkLost(task);
    return Status::OK();
  }
  if (started) OnStarted(task);
  if (flag("timed_out")) task->timed_out = true;
  if (integer("pid") && local_pids_) {
    task->pid = reply["pid"].get<pid_t>();
    if (task->timed_out || task->kill_pending) KillProcessGroup(task->pid);
  }
  if (integer("status")) {
    // Whatever the child left behind in its group dies with it, so that the
    // pipes close.
    KillProcessGroup(task->pid);
    tasks_.MarkExited(task, reply["status"].get<int>());
  }
  return Status::OK();
}

bool WorkerLauncher::WorkerExited() {
  if (worker_reaped_) return true;
  int status;
  pid_t got = waitpid(worker_pid_, &status, WNOHANG);
  if (got == worker_pid_) {
    worker_reaped_ = true;
    return true;
  }
  // Not our child after all: we can only ask whether it exists.
  if (got < 0 && errno == ECHILD) return kill(worker_pid_, 0) != 0 && errno == ESRCH;
  return false;
}

void WorkerLauncher::LoseWorker() {
  if (worker_gone_) return;
  worker_gone_ = true;
  // If the worker still lives, EOF tells it to exit.
  close(socket_fd_);
  socket_fd_ = -1;
  for (auto& [key, task] : tasks_.tasks()) {
    if (task.exited) continue;
    KillProcessGroup(task.pid);
    tasks_.MarkLost(&task);
  }
}

void WorkerLauncher::ReapWorker() {
  if (worker_reaped_ || worker_pid_ <= 0) return;
  double give_up = MonotonicSeconds() + (exit_grace_s_ > 0 ? exit_grace_s_ : kWorkerGraceS);
  int status;
  for (;;) {
    pid_t got = waitpid(worker_pid_, &status, WNOHANG);
    if (got == worker_pid_) return;
    if (got < 0 && errno != EINTR) return;  // not our child: not ours to reap
    double left = give_up - MonotonicSeconds();
    if (left <= 0) break;
    if (worker_exit_fd_ >= 0) {
      pollfd p{worker_exit_fd_, POLLIN, 0};
      poll(&p, 1, static_cast<int>(left * 1000) + 1);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  kill(worker_pid_, SIGKILL);
  while (waitpid(worker_pid_, &status, 0) < 0 && errno == EINTR) {
  }
  worker_reaped_ = true;
}

}  // namespace cairn
