#include "exec/worker_launcher.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <utility>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "exec/task_process.h"
#include "test_util.h"
#include "util/time.h"

namespace cairn {
namespace {

// A stand-in for the Python worker, speaking the same protocol, follows.

void SendAll(int sock, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = send(sock, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) _exit(0);  // the engine went away
    done += static_cast<size_t>(n);
  }
}

// Sends a reply line; with `split`, in two writes so the engine may see half
// a line.
void Reply(int sock, const nlohmann::json& reply, bool split) {
  std::string line = reply.dump() + "\n";
  if (!split) return SendAll(sock, line);
  SendAll(sock, line.substr(0, line.size() / 2));
  SendAll(sock, line.substr(line.size() / 2));
}

void RecvAll(int sock, char* data, size_t size) {
  while (size > 0) {
    ssize_t n = recv(sock, data, size, MSG_WAITALL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) _exit(3);
    data += n;
    size -= static_cast<size_t>(n);
  }
}

uint32_t GetU32(const unsigned char* p) {
  return p[0] | p[1] << 8 | p[2] << 16 | uint32_t{p[3]} << 24;
}

// Reads one request and forks its task. Returns false at EOF.
bool StartRequestedTask(int sock, std::map<pid_t, int64_t>* children, bool split) {
  unsigned char prefix[8];
  alignas(cmsghdr) char control[CMSG_SPACE(3 * sizeof(int))];
  iovec iov{prefix, sizeof(prefix)};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n = recvmsg(sock, &msg, MSG_WAITALL | MSG_CMSG_CLOEXEC);
  if (n == 0) return false;
  cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  if (n != 8 || cmsg == nullptr || cmsg->cmsg_type != SCM_RIGHTS ||
      cmsg->cmsg_len != CMSG_LEN(3 * sizeof(int))) {
    _exit(4);
  }
  int fds[3];
  std::memcpy(fds, CMSG_DATA(cmsg), sizeof(fds));
  // Out of the way of 1, 2 and 3, where the child puts them.
  for (int& fd : fds) {
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, 10);
    close(fd);
    fd = moved;
  }
  std::string header(GetU32(prefix), '\0');
  std::string payload(GetU32(prefix + 4), '\0');
  RecvAll(sock, header.data(), header.size());
  RecvAll(sock, payload.data(), payload.size());
  nlohmann::json request = nlohmann::json::parse(header);
  int64_t key = request["key"].get<int64_t>();

  // The child waits for `go` until its pid is announced, as the Python
  // worker's children should: until then the engine cannot kill its group.
  int go[2];
  if (pipe2(go, O_CLOEXEC) != 0) _exit(6);
  pid_t pid = fork();
  if (pid == 0) {
    char byte;
    if (read(go[0], &byte, 1) != 1) _exit(7);
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, nullptr);
    if (!BecomeTaskProcess().ok()) _exit(5);
    dup2(fds[0], 1);
    dup2(fds[1], 2);
    dup2(fds[2], 3);
    for (auto& [name, value] : request["env"].items()) {
      setenv(name.c_str(), value.get<std::string>().c_str(), 1);
    }
    setenv("CAIRN_RESULT_FD", "3", 1);
    // Through a file rather than `sh -c`, which caps a script at 128 KiB.
    int script = memfd_create("payload", 0);
    if (script < 0 || write(script, payload.data(), payload.size()) !=
                          static_cast<ssize_t>(payload.size())) {
      _exit(126);
    }
    std::string path = "/proc/self/fd/" + std::to_string(script);
    execl("/bin/sh", "sh", path.c_str(), nullptr);
    _exit(127);
  }
  setpgid(pid, pid);
  for (int fd : fds) close(fd);
  (*children)[pid] = key;
  Reply(sock, {{"key", key}, {"pid", pid}}, split);
  if (write(go[1], "g", 1) != 1) _exit(8);
  close(go[0]);
  close(go[1]);
  return true;
}

[[noreturn]] void RunFakeWorker(int sock, bool split) {
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, nullptr);
  int signal_fd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  std::map<pid_t, int64_t> children;
  for (;;) {
    pollfd p[2] = {{sock, POLLIN, 0}, {signal_fd, POLLIN, 0}};
    if (poll(p, 2, -1) < 0) continue;
    if (p[1].revents != 0) {
      signalfd_siginfo info;
      while (read(signal_fd, &info, sizeof(info)) > 0) {
      }
      int status;
      pid_t pid;
      while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        Reply(sock, {{"key", children[pid]}, {"status", status}}, split);
        children.erase(pid);
      }
    }
    // On EOF a worker exits, as the Python one does.
    if (p[0].revents != 0 && !StartRequestedTask(sock, &children, split)) {
      _exit(0);
    }
  }
}

struct FakeWorker {
  int fd;  // the engine's end
  pid_t pid;
};

FakeWorker StartFakeWorker(bool split_replies = false) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) std::abort();
  pid_t pid = fork();
  if (pid == 0) {
    close(sv[0]);
    RunFakeWorker(sv[1], split_replies);
  }
  close(sv[1]);
  return {sv[0], pid};
}

class RecordingSink : public OutputSink {
 public:
  void OnOutput(TaskKey key, int stream, std::string_view data) override {
    text_[{key, stream}].append(data);
  }
  std::string text(TaskKey key, int stream) const {
    auto it = text_.find({key, stream});
    return it == text_.end() ? "" : it->second;
  }

 private:
  std::map<std::pair<TaskKey, int>, std::string> text_;
};

TaskCommand Script(TaskKey key, std::string script, double timeout_s = 0) {
  TaskCommand command;
  command.key = key;
  command.payload = std::move(script);
  command.timeout_s = timeout_s;
  return command;
}

std::map<TaskKey, TaskExit> RunToEnd(Launcher* launcher, OutputSink* sink,
                                     double limit_s = 20) {
  std::map<TaskKey, TaskExit> exits;
  double give_up = MonotonicSeconds() + limit_s;
  while (launcher->running() > 0 && MonotonicSeconds() < give_up) {
    auto ended = launcher->Wait(1000, -1, sink);
    EXPECT_TRUE(ended.ok()) << ended.status().ToString();
    if (!ended.ok()) break;
    for (TaskExit& exit : *ended) exits[exit.key] = std::move(exit);
  }
  EXPECT_EQ(launcher->running(), 0) << "tasks still running after " << limit_s << " s";
  return exits;
}

// Waits (bounded) until `text` shows up on the task's stdout.
void WaitForOutput(Launcher* launcher, RecordingSink* sink, TaskKey key,
                   const std::string& text) {
  double give_up = MonotonicSeconds() + 10;
  while (sink->text(key, 1).find(text) == std::string::npos &&
         MonotonicSeconds() < give_up) {
    ASSERT_OK(launcher->Wait(1000, -1, sink));
  }
  ASSERT_NE(sink->text(key, 1).find(text), std::string::npos);
}

// As in process_launcher_test.cc: exited, zombies included.
bool ProcessGone(pid_t pid) {
  for (double end = MonotonicSeconds() + 5; MonotonicSeconds() < end; usleep(5000)) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) return true;
    size_t paren = line.rfind(')');
    if (paren == std::string::npos || paren + 2 >= line.size()) continue;
    if (line[paren + 2] == 'Z' || line[paren + 2] == 'X') return true;
  }
  return false;
}

TEST(WorkerLauncherTest, OutputExitCodeAndResultComeBack) {
  FakeWorker worker = StartFakeWorker();
  WorkerLauncher launcher(worker.fd, worker.pid);
  RecordingSink sink;
  ASSERT_OK(launcher.Start(
      Script(1, "echo out; echo err >&2; echo '{\"ok\":1}' >&3; exit 4")));
  auto exits = RunToEnd(&launcher, &sink);
  EXPECT_EQ(sink.text(1, 1), "out\n");
  EXPECT_EQ(sink.text(1, 2), "err\n");
  EXPECT_EQ(exits[1].kind, ExitKind::kExited);
  EXPECT_EQ(exits[1].exit_code, 4);
  EXPECT_EQ(exits[1].result, "{\"ok\":1}\n");
}

TEST(WorkerLauncherTest, ReportsKillingSignal) {
  FakeWorker worker = StartFakeWorker();
  WorkerLauncher launcher(worker.fd, worker.pid);
  ASSERT_OK(launcher.Start(Script(1, "ulimit -c 0; kill -SEGV $$")));
  auto exits = RunToEnd(&launcher, nullptr);
  EXPECT_EQ(exits[1].kind, ExitKind::kSignaled);
  EXPECT_EQ(exits[1].signal, SIGSEGV);
}

TEST(WorkerLauncherTest, EnvReachesTheTask) {
  FakeWorker worker = StartFakeWorker();
  WorkerLauncher launcher(worker.fd, worker.pid);
  RecordingSink sink;
  TaskCommand command = Script(1, "echo \"$CAIRN_TEST_VAR\"");
  command.env = {"CAIRN_TEST_VAR=a=b c"};
  ASSERT_OK(launcher.Start(command));
  RunToEnd(&launcher, &sink);
  EXPECT_EQ(sink.text(1, 1), "a=b c\n");
}

TEST(WorkerLauncherTest, TimeoutKillsTheWholeProcessGroup) {
  FakeWorker worker = StartFakeWorker();
  WorkerLauncher launcher(worker.fd, worker.pid);
  RecordingSink sink;
  double start = MonotonicSeconds();
  ASSERT_OK(launcher.Start(Script(1, "sleep 30 & echo $!; wait", 0.2)));
  auto exits = RunToEnd(&launcher, &sink);
  EXPECT_LT(MonotonicSeconds() - start, 5);
  EXPECT_EQ(exits[1].kind, ExitKind::kTimedOut);
  EXPECT_TRUE(ProcessGone(std::stoi(sink.text(1, 1))));
}

TEST(WorkerLauncherTest, TwentyConcurrentTasksWithSplitReplies) {
  FakeWorker worker = StartFakeWorker(/*split_replies=*/true);
  WorkerLauncher launcher(worker.fd, worker.pid);
  RecordingSink sink;
  for (TaskKey key = 0; key < 20; ++key) {
    ASSERT_OK(launcher.Start(Script(key, "echo task " + std::to_string(key) +
                                             "; exit " + std::to_string(key % 3))));
  }
  auto exits = RunToEnd(&launcher, &sink);
  ASSERT_EQ(exits.size(), 20u);
  for (TaskKey key = 0; key < 20; ++key) {
    EXPECT_EQ(exits[key].kind, ExitKind::kExited);
    EXPECT_EQ(exits[key].exit_code, key % 3);
    EXPECT_EQ(sink.text(key, 1), "task " + std::to_string(key) + "\n");
  }
}

TEST(WorkerLauncherTest, LargePayloadAndOutputStreamThrough) {
  FakeWorker worker = StartFakeWorker();
  WorkerLauncher launcher(worker.fd, worker.pid);
  RecordingSink sink;
  // A 1 MB payload overflows the socket buffer several times over.
  std::string script = "head -c 20000000 /dev/zero | wc -c; : '" +
                       std::string(1000000, 'x') + "'";
  ASSERT_OK(launcher.Start(Script(1, script)));
  auto exits = RunToEnd(&launcher, &sink);
  EXPECT_EQ(exits[1].exit_code, 0);
  EXPECT_EQ(std::stol(sink.text(1, 1)), 20000000);
}

TEST(WorkerLauncherTest, KillAllKillsEverything) {
  FakeWorker worker = StartFakeWorker();
  WorkerLauncher launcher(worker.fd, worker.pid);
  for (TaskKey key = 0; key < 3; ++key) ASSERT_OK(launcher.Start(Script(key, "sleep 30")));
  // Some pids may not have arrived yet: those are killed when they do.
  launcher.KillAll();
  double start = MonotonicSeconds();
  auto exits = RunToEnd(&launcher, nullptr);
  EXPECT_LT(MonotonicSeconds() - start, 5);
  ASSERT_EQ(exits.size(), 3u);
  for (auto& [key, exit] : exits) {
    EXPECT_EQ(exit.kind, ExitKind::kSignaled);
    EXPECT_EQ(exit.signal, SIGKILL);
  }
}

TEST(WorkerLauncherTest, WorkerDeathMarksRunningTasksLost) {
  FakeWorker worker = StartFakeWorker();
  WorkerLauncher launcher(worker.fd, worker.pid);
  RecordingSink sink;
  ASSERT_OK(launcher.Start(Script(1, "echo done")));
  // Task 2 dies with the worker (parent-death signal); task 3's grandchild
  // only because the launcher kills the group of every lost task.
  ASSERT_OK(launcher.Start(Script(2, "echo ready; exec sleep 30")));
  ASSERT_OK(launcher.Start(Script(3, "echo ready; sleep 30 & wait")));
  std::map<TaskKey, TaskExit> exits;
  double give_up = MonotonicSeconds() + 10;
  while (exits.count(1) == 0 && MonotonicSeconds() < give_up) {
    auto ended = launcher.Wait(1000, -1, &sink);
    ASSERT_OK(ended);
    for (TaskExit& exit : *ended) exits[exit.key] = std::move(exit);
  }
  WaitForOutput(&launcher, &sink, 2, "ready");
  WaitForOutput(&launcher, &sink, 3, "ready");
  ASSERT_EQ(kill(worker.pid, SIGKILL), 0);
  double start = MonotonicSeconds();
  exits.merge(RunToEnd(&launcher, &sink));
  // Well under the launcher's grace for pipes held open by strangers.
  EXPECT_LT(MonotonicSeconds() - start, 4);
  EXPECT_EQ(exits[1].kind, ExitKind::kExited);
  EXPECT_EQ(exits[2].kind, ExitKind::kLost);
  EXPECT_EQ(exits[3].kind, ExitKind::kLost);
  EXPECT_FALSE(launcher.worker_alive());
  EXPECT_EQ(launcher.Start(Script(4, "true")).code(), Status::Code::kIOError);
}

TEST(WorkerLauncherTest, DestructorKillsTasksAndReapsTheWorker) {
  FakeWorker worker = StartFakeWorker();
  RecordingSink sink;
  pid_t grandchild = 0;
  {
    WorkerLauncher launcher(worker.fd, worker.pid);
    ASSERT_OK(launcher.Start(Script(1, "sleep 30 & echo $!; wait")));
    WaitForOutput(&launcher, &sink, 1, "\n");
    grandchild = std::stoi(sink.text(1, 1));
  }
  int status;
  EXPECT_EQ(waitpid(worker.pid, &status, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
  EXPECT_TRUE(ProcessGone(grandchild));
}

// A worker end held by the test, to send exact byte sequences.
class ScriptedWorker {
 public:
  ScriptedWorker() {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) std::abort();
    engine_fd_ = sv[0];
    worker_fd_ = sv[1];
    // The "worker" process only swallows requests and exits on EOF; a
    // pid for the launcher to reap.
    pid_ = fork();
    if (pid_ == 0) {
      close(engine_fd_);
      char buf[4096];
      while (read(worker_fd_, buf, sizeof(buf)) > 0) {
      }
      _exit(0);
    }
    // A real process group for replies to name, since the launcher kills it.
    task_pid_ = fork();
    if (task_pid_ == 0) {
      // Holding the engine's end would keep the worker from seeing EOF.
      close(engine_fd_);
      close(worker_fd_);
      setpgid(0, 0);
      pause();
      _exit(0);
    }
    setpgid(task_pid_, task_pid_);
  }
  ~ScriptedWorker() {
    if (worker_fd_ >= 0) close(worker_fd_);
    kill(task_pid_, SIGKILL);
    waitpid(task_pid_, nullptr, 0);
  }
  void Send(const std::string& bytes) {
    ASSERT_EQ(write(worker_fd_, bytes.data(), bytes.size()),
              static_cast<ssize_t>(bytes.size()));
  }
  // The worker process exits once no socket end but the engine's remains.
  void CloseWorkerEnd() {
    close(worker_fd_);
    worker_fd_ = -1;
  }
  int engine_fd() const { return engine_fd_; }
  pid_t pid() const { return pid_; }
  pid_t task_pid() const { return task_pid_; }

 private:
  int engine_fd_;
  int worker_fd_;
  pid_t pid_;
  pid_t task_pid_;
};

TEST(WorkerLauncherTest, RepliesSplitAcrossReadsAreReassembled) {
  ScriptedWorker worker;
  WorkerLauncher launcher(worker.engine_fd(), worker.pid());
  ASSERT_OK(launcher.Start(Script(1, "ignored")));
  ASSERT_OK(launcher.Start(Script(2, "ignored")));
  std::string pid = std::to_string(worker.task_pid());
  worker.Send("{\"key\": 1, \"pi");
  ASSERT_OK(launcher.Wait(1000, -1, nullptr));
  // Both replies for task 1 and one for task 2 in one read.
  worker.Send("d\": " + pid + "}\n{\"key\": 1, \"status\": 768}\n{\"key\": 2, \"status\": 9}\n");
  auto exits = RunToEnd(&launcher, nullptr);
  EXPECT_EQ(exits[1].kind, ExitKind::kExited);
  EXPECT_EQ(exits[1].exit_code, 3);
  EXPECT_EQ(exits[2].kind, ExitKind::kSignaled);
  EXPECT_EQ(exits[2].signal, 9);
  EXPECT_TRUE(ProcessGone(worker.task_pid()));  // its group was killed
  worker.CloseWorkerEnd();
}

TEST(WorkerLauncherTest, MalformedReplyIsCorruptionAndLosesTheWorker) {
  ScriptedWorker worker;
  WorkerLauncher launcher(worker.engine_fd(), worker.pid());
  ASSERT_OK(launcher.Start(Script(1, "ignored")));
  worker.Send("not json\n");
  Status status;
  while (status.ok() && launcher.running() > 0) {
    status = launcher.Wait(1000, -1, nullptr).status();
  }
  EXPECT_EQ(status.code(), Status::Code::kCorruption);
  EXPECT_FALSE(launcher.worker_alive());
  auto exits = RunToEnd(&launcher, nullptr);
  EXPECT_EQ(exits[1].kind, ExitKind::kLost);
  worker.CloseWorkerEnd();
}

TEST(TaskProcessTest, BecomeTaskProcessLeadsItsOwnGroup) {
  pid_t child = fork();
  if (child == 0) _exit(BecomeTaskProcess().ok() && getpgrp() == getpid() ? 0 : 1);
  int status;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(TaskProcessTest, DieWithParentExitsWhenTheParentIsAlreadyGone) {
  pid_t child = fork();
  if (child == 0) {
    // getppid() is the test process, so a different expected parent means
    // "the parent died and we were reparented".
    Status status = DieWithParent(getppid() + 100000);
    _exit(status.ok() ? 42 : 43);
  }
  int status;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1);

  child = fork();
  if (child == 0) _exit(DieWithParent(getppid()).ok() ? 42 : 43);
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_EQ(WEXITSTATUS(status), 42);
}

}  // namespace
}  // namespace cairn
