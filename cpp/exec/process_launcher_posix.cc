#include "exec/process_launcher.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <map>
#include <utility>


extern char** environ;

namespace cairn {
namespace {

// Without pidfds nothing wakes poll() when a child exits while something else
// still holds its pipes, so waits are cut into slices this long.
constexpr int kReapPollMs = 50;

// The task sees its result pipe here; CAIRN_RESULT_FD says so.
constexpr int kResultFd = 3;
// And its payload here, as CAIRN_TASK_PAYLOAD=/dev/fd/4.
constexpr int kPayloadFd = 4;

std::string NameOf(const std::string& entry) {
  return entry.substr(0, entry.find('='));
}

// The engine's environment, overridden by `extra` and then by the CAIRN_*
// variables the launcher owns.
std::vector<std::string> BuildEnvironment(const std::vector<std::string>& extra) {
  std::map<std::string, std::string> overrides;
  for (const std::string& entry : extra) overrides[NameOf(entry)] = entry;
  overrides["CAIRN_RESULT_FD"] = "CAIRN_RESULT_FD=" + std::to_string(kResultFd);
  overrides["CAIRN_TASK_PAYLOAD"] = "CAIRN_TASK_PAYLOAD=/dev/fd/" + std::to_string(kPayloadFd);
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry(*e);
    if (overrides.count(NameOf(entry)) == 0) env.push_back(std::move(entry));
  }
  for (auto& [name, entry] : overrides) env.push_back(std::move(entry));
  return env;
}

// A memfd holding the payload, numbered above kPayloadFd so that its dup2
// onto kPayloadFd always makes a new, inheritable descriptor.
Result<int> PayloadFd(const std::string& payload) {
  int fd = memfd_create("cairn-payload", MFD_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "memfd_create");
  if (fd <= kPayloadFd) {
    int high = fcntl(fd, F_DUPFD_CLOEXEC, kPayloadFd + 1);
    close(fd);
    if (high < 0) return Status::FromErrno(errno, "fcntl(F_DUPFD_CLOEXEC)");
    fd = high;
  }
  size_t done = 0;
  while (done < payload.size()) {
    ssize_t n = write(fd, payload.data() + done, payload.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Status status = Status::FromErrno(errno, "writing a task's payload");
      close(fd);
      return status;
    }
    done += static_cast<size_t>(n);
  }
  return fd;
}

// posix_spawn's attributes and file actions, destroyed together.
class SpawnSetup {
 public:
  SpawnSetup() = default;
  ~SpawnSetup() {
    if (attr_ok_) posix_spawnattr_destroy(&attr_);
    if (actions_ok_) posix_spawn_file_actions_destroy(&actions_);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;

  Status Init(const TaskPipes& pipes, int payload_fd) {
    int err = posix_spawnattr_init(&attr_);
    if (err != 0) return Status::FromErrno(err, "posix_spawnattr_init");
    attr_ok_ = true;
    // The engine's thread may block signals and Python ignores SIGPIPE; a
    // task starts from the defaults, in a process group of its own.
    sigset_t mask;
    sigemptyset(&mask);
    sigset_t defaults;
    sigemptyset(&defaults);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGCHLD,
                    SIGUSR1, SIGUSR2, SIGALRM, SIGXFSZ}) {
      sigaddset(&defaults, sig);
    }
    short flags = POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                  POSIX_SPAWN_SETSIGDEF;
    if ((err = posix_spawnattr_setflags(&attr_, flags)) != 0 ||
        (err = posix_spawnattr_setpgroup(&attr_, 0)) != 0 ||
        (err = posix_spawnattr_setsigmask(&attr_, &mask)) != 0 ||
        (err = posix_spawnattr_setsigdefault(&attr_, &defaults)) != 0) {
      return Status::FromErrno(err, "posix_spawnattr");
    }

    if ((err = posix_spawn_file_actions_init(&actions_)) != 0) {
      return Status::FromErrno(err, "posix_spawn_file_actions_init");
    }
    actions_ok_ = true;
    // The write ends are numbered 4 or more (TaskPipes), so these dup2s
    // cannot clobber each other, and the originals close on exec.
    if ((err = posix_spawn_file_actions_addopen(&actions_, 0, "/dev/null",
                                                O_RDONLY, 0)) != 0 ||
        (err = posix_spawn_file_actions_adddup2(
             &actions_, pipes.write[RunningTask::kStdout], 1)) != 0 ||
        (err = posix_spawn_file_actions_adddup2(
             &actions_, pipes.write[RunningTask::kStderr], 2)) != 0 ||
        (err = posix_spawn_file_actions_adddup2(
             &actions_, pipes.write[RunningTask::kResult], kResultFd)) != 0 ||
        (err = posix_spawn_file_actions_adddup2(&actions_, payload_fd, kPayloadFd)) != 0) {
      return Status::FromErrno(err, "posix_spawn_file_actions");
    }
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    // Libraries loaded into Python may open fds without O_CLOEXEC; a task
    // holding one could keep a socket or a lock alive.
    if ((err = posix_spawn_file_actions_addclosefrom_np(&actions_,
                                                        kPayloadFd + 1)) != 0) {
      return Status::FromErrno(err, "posix_spawn_file_actions_addclosefrom_np");
    }
#endif
    return Status::OK();
  }

  const posix_spawnattr_t* attr() const { return &attr_; }
  const posix_spawn_file_actions_t* actions() const { return &actions_; }

 private:
  posix_spawnattr_t attr_;
  posix_spawn_file_actions_t actions_;
  bool attr_ok_ = false;
  bool actions_ok_ = false;
};

std::vector<char*> CStrings(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (const std::string& s : strings) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

}  // namespace

ProcessLauncher::ProcessLauncher(std::string task_exec)
    : task_exec_(std::move(task_exec)) {}

ProcessLauncher::~ProcessLauncher() {
  for (auto& [key, task] : tasks_.tasks()) {
    if (task.exited || task.pid <= 0) continue;
    KillProcessGroup(task.pid);
    int status;
    while (waitpid(task.pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
}

Status ProcessLauncher::Start(const TaskCommand& command) {
  if (command.argv.empty()) {
    return Status::InvalidArgument("task " + std::to_string(command.key) +
                                   " has an empty argv");
  }
  if (tasks_.Contains(command.key)) {
    return Status::InvalidArgument("task " + std::to_string(command.key) +
                                   " is already running");
  }
  CAIRN_ASSIGN_OR_RETURN(int payload_fd, PayloadFd(command.payload));
  TaskPipes pipes;
  SpawnSetup setup;
  Status status = pipes.Open();
  if (status.ok()) status = setup.Init(pipes, payload_fd);
  if (!status.ok()) {
    close(payload_fd);
    return status;
  }
  std::vector<std::string> env = BuildEnvironment(command.env);
  std::vector<std::string> args;
  if (!task_exec_.empty()) args = {task_exec_, std::to_string(getpid())};
  args.insert(args.end(), command.argv.begin(), command.argv.end());
  std::vector<char*> argv = CStrings(args);
  std::vector<char*> envp = CStrings(env);
  pid_t pid = -1;
  int err = posix_spawnp(&pid, argv[0], setup.actions(), setup.attr(),
                         argv.data(), envp.data());
  close(payload_fd);  // the child has its copy

  RunningTask* task = tasks_.Add(command.key, command.timeout_s);
  for (int i = 0; i < 3; ++i) std::swap(task->fds[i], pipes.read[i]);
  if (err != 0) {
    // Reported like a shell would: exit 127 and a line on stderr, which
    // fits in the empty pipe's buffer. `pipes` closes the write ends.
    std::string line = Status::FromErrno(err, "cairn: cannot run '" + args[0] + "'")
                           .message() + "\n";
    ssize_t ignored = write(pipes.write[RunningTask::kStderr], line.data(), line.size());
    (void)ignored;
    tasks_.MarkExited(task, W_EXITCODE(127, 0));
    return Status::OK();
  }
  pipes.CloseWriteEnds();
  task->pid = pid;
  task->exit_fd = OpenExitFd(pid);
  return Status::OK();
}

Result<std::vector<TaskExit>> ProcessLauncher::Wait(int timeout_ms, int wake_fd,
                                                    OutputSink* sink) {
  int poll_ms = tasks_.PollTimeout(timeout_ms);
  pfds_.clear();
  tasks_.AddPollFds(&pfds_);
  for (auto& [key, task] : tasks_.tasks()) {
    if (!task.exited && task.exit_fd < 0) {
      poll_ms = poll_ms < 0 ? kReapPollMs : std::min(poll_ms, kReapPollMs);
      break;
    }
  }
  if (wake_fd >= 0) pfds_.push_back({wake_fd, POLLIN, 0});
  if (pfds_.empty() && poll_ms < 0) return std::vector<TaskExit>{};

  if (poll(pfds_.data(), pfds_.size(), poll_ms) < 0) {
    if (errno != EINTR) return Status::FromErrno(errno, "poll");
    // A signal (Ctrl-C) ends the round; its handler has woken wake_fd.
    for (pollfd& p : pfds_) p.revents = 0;
  }
  tasks_.ReadReady(pfds_, sink);
  Reap();
  for (RunningTask* task : tasks_.TakeExpired()) KillProcessGroup(task->pid);
  tasks_.CloseStalePipes(sink);
  return tasks_.TakeEnded();
}

void ProcessLauncher::Kill(TaskKey key) {
  RunningTask* task = tasks_.Find(key);
  if (task != nullptr && !task->exited) KillProcessGroup(task->pid);
}

void ProcessLauncher::KillAll() {
  for (auto& [key, task] : tasks_.tasks()) {
    if (!task.exited) KillProcessGroup(task.pid);
  }
}

void ProcessLauncher::Reap() {
  for (auto& [key, task] : tasks_.tasks()) {
    if (task.exited || task.pid <= 0) continue;
    // WNOWAIT leaves the child a zombie, so its pid (and so its process
    // group id) cannot be reused before the group is killed.
    siginfo_t info{};
    if (waitid(P_PID, static_cast<id_t>(task.pid), &info,
               WEXITED | WNOHANG | WNOWAIT) != 0) {
      // ECHILD: someone else in this process reaped it.
      if (errno != EINTR) tasks_.MarkLost(&task);
      continue;
    }
    if (info.si_pid == 0) continue;  // still running
    KillProcessGroup(task.pid);
    int status = 0;
    pid_t got;
    while ((got = waitpid(task.pid, &status, 0)) < 0 && errno == EINTR) {
    }
    if (got == task.pid) {
      tasks_.MarkExited(&task, status);
    } else {
      tasks_.MarkLost(&task);
    }
  }
}

}  // namespace cairn
