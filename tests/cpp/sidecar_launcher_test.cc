// SidecarLauncher against a fake sidecar (a forked child speaking the
// protocol), and RoutingLauncher's choice of launcher by backend.
#include "exec/sidecar_launcher.h"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "exec/routing_launcher.h"
#include "test_util.h"

namespace cairn {
namespace {

void WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) _exit(5);
    done += static_cast<size_t>(n);
  }
}

bool ReadExactly(int sock, char* out, size_t size, int* fds) {
  alignas(cmsghdr) char control[CMSG_SPACE(3 * sizeof(int))];
  size_t got = 0;
  while (got < size) {
    iovec iov{out + got, size - got};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t n = recvmsg(sock, &msg, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    if (cmsg != nullptr && cmsg->cmsg_type == SCM_RIGHTS && fds != nullptr) {
      std::memcpy(fds, CMSG_DATA(cmsg), 3 * sizeof(int));
    }
    got += static_cast<size_t>(n);
  }
  return true;
}

// The fake sidecar. Per task, by its env MODE: "ok" writes output and a
// result and exits 0; "lost" reports the task lost; "hang" reports env PID
// and that the task started (its timeout counts from then)
// as the task's pid (a process the launcher must never signal: remote pids
// are another machine's) and waits for a kill frame, then reports SIGKILL;
// "deaf" reports the task started, then hangs: it never answers again, and
// leaves a child of its own (a helper, as Ray's driver may have) holding the
// task's pipes and writing its pid into the stdout pipe.
[[noreturn]] void FakeSidecar(int sock) {
  std::vector<std::pair<int64_t, std::vector<int>>> hanging;
  bool deaf = false;
  for (;;) {
    unsigned char prefix[8];
    int fds[3] = {-1, -1, -1};
    if (!ReadExactly(sock, reinterpret_cast<char*>(prefix), 8, fds)) break;
    uint32_t hlen = prefix[0] | prefix[1] << 8 | prefix[2] << 16 | uint32_t{prefix[3]} << 24;
    uint32_t plen = prefix[4] | prefix[5] << 8 | prefix[6] << 16 | uint32_t{prefix[7]} << 24;
    std::string header(hlen, '\0'), payload(plen, '\0');
    if (!ReadExactly(sock, header.data(), hlen, nullptr)) break;
    if (plen > 0 && !ReadExactly(sock, payload.data(), plen, nullptr)) break;
    nlohmann::json h = nlohmann::json::parse(header);
    int64_t key = h["key"];
    if (deaf) continue;
    if (h.value("kill", false)) {
      for (auto& [k, task_fds] : hanging) {
        if (k != key) continue;
        for (int fd : task_fds) close(fd);
        WriteAll(sock, nlohmann::json{{"key", key}, {"status", SIGKILL}}.dump() + "\n");
      }
      continue;
    }
    std::string mode = h["env"].value("MODE", "ok");
    if (mode == "ok") {
      WriteAll(fds[0], "from the node: " + payload + "\n");
      WriteAll(fds[2], "{\"artifacts\": []}");
      for (int fd : fds) close(fd);
      WriteAll(sock, nlohmann::json{{"key", key}, {"status", 3 << 8}}.dump() + "\n");
    } else if (mode == "deaf") {
      WriteAll(sock, nlohmann::json{{"key", key}, {"started", true}}.dump() + "\n");
      if (fork() == 0) {
        WriteAll(fds[0], std::to_string(getpid()) + "\n");
        for (;;) pause();
      }
      deaf = true;
    } else if (mode == "lost") {
      for (int fd : fds) close(fd);
      WriteAll(sock, nlohmann::json{{"key", key}, {"lost", true}}.dump() + "\n");
    } else {
      int pid = std::stoi(h["env"].value("PID", "0"));
      WriteAll(sock, nlohmann::json{{"key", key}, {"pid", pid}}.dump() + "\n");
      WriteAll(sock, nlohmann::json{{"key", key}, {"started", true}}.dump() + "\n");
      hanging.push_back({key, {fds[0], fds[1], fds[2]}});
    }
  }
  _exit(0);
}

// Dead: no such process, or a zombie its new parent has yet to reap.
bool Gone(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string pid_field, comm, state;
  if (!(stat >> pid_field >> comm >> state)) return true;
  return state == "Z";
}

// Waits up to `timeout_ms` for `pid` (any process, not only a child) to
// exit: a killed process closes its files before it is a zombie, so whoever
// saw its pipes close may look too early. A pidfd is readable once it exits.
bool WaitGone(pid_t pid, int timeout_ms) {
  int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return errno == ESRCH || Gone(pid);
  pollfd p{fd, POLLIN, 0};
  int ready = poll(&p, 1, timeout_ms);
  close(fd);
  return ready == 1 && Gone(pid);
}

class CollectOutput : public OutputSink {
 public:
  void OnOutput(TaskKey, int stream, std::string_view data) override {
    if (stream == 1) out.append(data);
  }
  std::string out;
};

struct Peer {
  std::unique_ptr<SidecarLauncher> launcher;
  pid_t pid = 0;
};

Peer StartPeer() {
  int sv[2];
  EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);  // as backends/launch.py starts the sidecar
    close(sv[0]);
    FakeSidecar(sv[1]);
  }
  setpgid(pid, pid);
  close(sv[1]);
  return {std::make_unique<SidecarLauncher>(sv[0], pid, /*backstop_s=*/0, /*kill_wait_s=*/0.2), pid};
}

TaskCommand Command(TaskKey key, const std::string& mode, double timeout_s = 0, pid_t pid = 0) {
  TaskCommand c;
  c.key = key;
  c.payload = "payload-" + std::to_string(key);
  c.env = {"MODE=" + mode, "PID=" + std::to_string(pid)};
  c.timeout_s = timeout_s;
  c.backend = "ray";
  return c;
}

std::vector<TaskExit> WaitForAll(Launcher& launcher, OutputSink* sink) {
  std::vector<TaskExit> all;
  while (launcher.running() > 0) {
    auto exits = launcher.Wait(1000, -1, sink);
    EXPECT_TRUE(exits.ok());
    if (!exits.ok()) break;
    for (TaskExit& e : *exits) all.push_back(std::move(e));
  }
  return all;
}

TEST(SidecarLauncherTest, OutputResultAndStatusComeBackThroughThePipes) {
  Peer peer = StartPeer();
  CollectOutput sink;
  ASSERT_OK(peer.launcher->Start(Command(7, "ok")));
  std::vector<TaskExit> exits = WaitForAll(*peer.launcher, &sink);
  ASSERT_EQ(exits.size(), 1u);
  EXPECT_EQ(exits[0].kind, ExitKind::kExited);
  EXPECT_EQ(exits[0].exit_code, 3);
  EXPECT_EQ(exits[0].result, "{\"artifacts\": []}");
  EXPECT_EQ(sink.out, "from the node: payload-7\n");
}

TEST(SidecarLauncherTest, ALostReplyMakesTheAttemptLost) {
  Peer peer = StartPeer();
  ASSERT_OK(peer.launcher->Start(Command(1, "lost")));
  std::vector<TaskExit> exits = WaitForAll(*peer.launcher, nullptr);
  ASSERT_EQ(exits.size(), 1u);
  EXPECT_EQ(exits[0].kind, ExitKind::kLost);
}

TEST(SidecarLauncherTest, TimeoutSendsAKillFrameAndNeverSignalsAReportedPid) {
  pid_t bystander = fork();
  if (bystander == 0) {
    setpgid(0, 0);
    pause();
    _exit(0);
  }
  setpgid(bystander, bystander);
  Peer peer = StartPeer();
  ASSERT_OK(peer.launcher->Start(Command(2, "hang", 0.05, bystander)));
  std::vector<TaskExit> exits = WaitForAll(*peer.launcher, nullptr);
  ASSERT_EQ(exits.size(), 1u);
  // The fake only reports an end after a kill frame, so this proves one came.
  EXPECT_EQ(exits[0].kind, ExitKind::kTimedOut);
  // The pid the peer reported is another machine's: nothing here was killed.
  EXPECT_EQ(waitpid(bystander, nullptr, WNOHANG), 0);
  kill(bystander, SIGKILL);
  waitpid(bystander, nullptr, 0);
}

TEST(SidecarLauncherTest, KillAllSendsKillFrames) {
  Peer peer = StartPeer();
  ASSERT_OK(peer.launcher->Start(Command(4, "hang")));
  ASSERT_OK(peer.launcher->Start(Command(5, "hang")));
  peer.launcher->KillAll();
  std::vector<TaskExit> exits = WaitForAll(*peer.launcher, nullptr);
  ASSERT_EQ(exits.size(), 2u);
  for (const TaskExit& e : exits) {
    EXPECT_EQ(e.kind, ExitKind::kSignaled);
    EXPECT_EQ(e.signal, SIGKILL);
  }
}

TEST(SidecarLauncherTest, AHungSidecarIsKilledWithItsGroupAndItsTasksAreLost) {
  Peer peer = StartPeer();
  CollectOutput sink;
  ASSERT_OK(peer.launcher->Start(Command(6, "deaf", /*timeout_s=*/0.05)));
  std::vector<TaskExit> exits = WaitForAll(*peer.launcher, &sink);
  ASSERT_EQ(exits.size(), 1u);
  EXPECT_EQ(exits[0].kind, ExitKind::kLost);
  EXPECT_FALSE(peer.launcher->worker_alive());
  // The sidecar and its helper are gone (the helper held the task's pipes,
  // so the task could only end once it died).
  EXPECT_TRUE(WaitGone(std::stoi(sink.out), 10000));
  // Nothing more goes to a sidecar that was given up on.
  EXPECT_FALSE(peer.launcher->Start(Command(7, "ok")).ok());
}

TEST(SidecarLauncherTest, KillAllEndsEvenWhenTheSidecarStopsAnswering) {
  Peer peer = StartPeer();
  ASSERT_OK(peer.launcher->Start(Command(8, "deaf")));
  ASSERT_OK(peer.launcher->Start(Command(9, "hang")));  // sent after it went deaf
  peer.launcher->KillAll();
  std::vector<TaskExit> exits = WaitForAll(*peer.launcher, nullptr);
  ASSERT_EQ(exits.size(), 2u);
  for (const TaskExit& e : exits) EXPECT_EQ(e.kind, ExitKind::kLost);
}

// Ends every task it is given at the next Wait, and remembers their keys.
class ImmediateLauncher : public Launcher {
 public:
  Status Start(const TaskCommand& command) override {
    started.push_back(command.key);
    pending_.push_back(command.key);
    return Status::OK();
  }
  Result<std::vector<TaskExit>> Wait(int, int, OutputSink*) override {
    std::vector<TaskExit> exits;
    for (TaskKey key : pending_) {
      TaskExit e;
      e.key = key;
      e.exit_code = 0;
      exits.push_back(e);
    }
    pending_.clear();
    return exits;
  }
  void KillAll() override { killed = true; }
  int running() const override { return static_cast<int>(pending_.size()); }

  std::vector<TaskKey> started;
  bool killed = false;

 private:
  std::vector<TaskKey> pending_;
};

TEST(RoutingLauncherTest, SendsEachTaskByItsBackendAndCollectsFromBoth) {
  auto local = std::make_unique<ImmediateLauncher>();
  auto remote = std::make_unique<ImmediateLauncher>();
  ImmediateLauncher* l = local.get();
  ImmediateLauncher* r = remote.get();
  RoutingLauncher routing(std::move(local), std::move(remote));
  TaskCommand here;
  here.key = 1;
  TaskCommand away;
  away.key = 2;
  away.backend = "ray";
  ASSERT_OK(routing.Start(here));
  ASSERT_OK(routing.Start(away));
  EXPECT_EQ(l->started, std::vector<TaskKey>{1});
  EXPECT_EQ(r->started, std::vector<TaskKey>{2});
  EXPECT_EQ(routing.running(), 2);
  std::vector<TaskExit> exits = WaitForAll(routing, nullptr);
  EXPECT_EQ(exits.size(), 2u);
  routing.KillAll();
  EXPECT_TRUE(l->killed && r->killed);
}

}  // namespace
}  // namespace cairn
