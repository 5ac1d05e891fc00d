#include "exec/process_launcher.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iterator>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <utility>

#include <gtest/gtest.h>

#include "test_util.h"
#include "util/time.h"

namespace cairn {
namespace {

// Collects output per (task, stream), or only counts it when `count_only`.
class RecordingSink : public OutputSink {
 public:
  explicit RecordingSink(bool count_only = false) : count_only_(count_only) {}

  void OnOutput(TaskKey key, int stream, std::string_view data) override {
    bytes_[{key, stream}] += data.size();
    max_chunk_ = std::max(max_chunk_, data.size());
    if (!count_only_) text_[{key, stream}].append(data);
  }

  std::string text(TaskKey key, int stream) const {
    auto it = text_.find({key, stream});
    return it == text_.end() ? "" : it->second;
  }
  size_t bytes(TaskKey key, int stream) const {
    auto it = bytes_.find({key, stream});
    return it == bytes_.end() ? 0 : it->second;
  }
  size_t max_chunk() const { return max_chunk_; }

 private:
  bool count_only_;
  std::map<std::pair<TaskKey, int>, std::string> text_;
  std::map<std::pair<TaskKey, int>, size_t> bytes_;
  size_t max_chunk_ = 0;
};

TaskCommand Shell(TaskKey key, std::string script, double timeout_s = 0) {
  TaskCommand command;
  command.key = key;
  command.argv = {"/bin/sh", "-c", std::move(script)};
  command.timeout_s = timeout_s;
  return command;
}

// Waits until every task has ended; the limit only guards against a hang.
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

// True once `pid` has exited (a zombie counts: PID 1 in a container may never
// reap orphans). Exiting takes the kernel a moment after the process closed
// its fds, hence the bounded wait.
bool ProcessGone(pid_t pid) {
  double give_up = MonotonicSeconds() + 5;
  while (MonotonicSeconds() < give_up) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!stat || !std::getline(stat, line)) return true;
    size_t paren = line.rfind(')');
    if (paren != std::string::npos && paren + 2 < line.size()) {
      char state = line[paren + 2];
      if (state == 'Z' || state == 'X') return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

int Entries(const std::string& dir) {
  auto it = std::filesystem::directory_iterator(dir);
  return static_cast<int>(std::distance(it, std::filesystem::directory_iterator()));
}

TEST(ProcessLauncherTest, StdoutAndStderrArriveOnTheirStreams) {
  ProcessLauncher launcher;
  RecordingSink sink;
  ASSERT_OK(launcher.Start(Shell(1, "echo out; echo err >&2")));
  auto exits = RunToEnd(&launcher, &sink);
  EXPECT_EQ(sink.text(1, 1), "out\n");
  EXPECT_EQ(sink.text(1, 2), "err\n");
  ASSERT_EQ(exits.count(1), 1u);
  EXPECT_EQ(exits[1].kind, ExitKind::kExited);
  EXPECT_EQ(exits[1].exit_code, 0);
  EXPECT_LE(exits[1].started_at, exits[1].finished_at);
}

TEST(ProcessLauncherTest, ReportsExitCode) {
  ProcessLauncher launcher;
  ASSERT_OK(launcher.Start(Shell(7, "exit 3")));
  auto exits = RunToEnd(&launcher, nullptr);
  EXPECT_EQ(exits[7].kind, ExitKind::kExited);
  EXPECT_EQ(exits[7].exit_code, 3);
}

TEST(ProcessLauncherTest, ReportsKillingSignal) {
  ProcessLauncher launcher;
  ASSERT_OK(launcher.Start(Shell(1, "ulimit -c 0; kill -SEGV $$")));
  auto exits = RunToEnd(&launcher, nullptr);
  EXPECT_EQ(exits[1].kind, ExitKind::kSignaled);
  EXPECT_EQ(exits[1].signal, SIGSEGV);
}

TEST(ProcessLauncherTest, TimeoutKillsTheWholeProcessGroup) {
  ProcessLauncher launcher;
  RecordingSink sink;
  double start = MonotonicSeconds();
  ASSERT_OK(launcher.Start(Shell(1, "sleep 30 & echo $!; wait", 0.2)));
  auto exits = RunToEnd(&launcher, &sink);
  EXPECT_LT(MonotonicSeconds() - start, 5);
  EXPECT_EQ(exits[1].kind, ExitKind::kTimedOut);
  pid_t grandchild = std::stoi(sink.text(1, 1));
  EXPECT_TRUE(ProcessGone(grandchild));
}

TEST(ProcessLauncherTest, ExitKillsStrayGrandchildren) {
  ProcessLauncher launcher;
  RecordingSink sink;
  double start = MonotonicSeconds();
  // The grandchild holds stdout open; only killing the group closes it.
  ASSERT_OK(launcher.Start(Shell(1, "sleep 30 & echo $!; exit 0")));
  auto exits = RunToEnd(&launcher, &sink);
  EXPECT_LT(MonotonicSeconds() - start, 5);
  EXPECT_EQ(exits[1].kind, ExitKind::kExited);
  EXPECT_EQ(exits[1].exit_code, 0);
  EXPECT_TRUE(ProcessGone(std::stoi(sink.text(1, 1))));
}

TEST(ProcessLauncherTest, ResultChannelContentComesBack) {
  ProcessLauncher launcher;
  ASSERT_OK(launcher.Start(Shell(1, "echo '{\"ok\":1}' >&\"$CAIRN_RESULT_FD\"")));
  ASSERT_OK(launcher.Start(Shell(2, "true")));
  auto exits = RunToEnd(&launcher, nullptr);
  EXPECT_EQ(exits[1].result, "{\"ok\":1}\n");
  EXPECT_EQ(exits[2].result, "");
}

TEST(ProcessLauncherTest, PayloadIsReadableAndNeverAFileOnDisk) {
  ProcessLauncher launcher;
  RecordingSink sink;
  TaskCommand command =
      Shell(1, "cat \"$CAIRN_TASK_PAYLOAD\"; printf %s \"$CAIRN_TASK_PAYLOAD\" >&2");
  command.payload = "{\"step\": \"start\"}";
  ASSERT_OK(launcher.Start(command));
  auto exits = RunToEnd(&launcher, &sink);
  EXPECT_EQ(sink.text(1, 1), command.payload);
  // A memfd: whenever the engine dies, nothing is left behind.
  EXPECT_EQ(sink.text(1, 2), "/dev/fd/4");
}

// A process tree the test owns: it is the subreaper of whatever the "engine"
// (a forked child running a ProcessLauncher) leaves behind, so it can wait
// for orphans itself.
TEST(ProcessLauncherTest, ThroughTaskExecATaskDiesWithTheEngine) {
  ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  int pids[2];
  ASSERT_EQ(pipe(pids), 0);
  pid_t engine = fork();
  ASSERT_GE(engine, 0);
  if (engine == 0) {
    ProcessLauncher launcher(CAIRN_TEST_TASK_EXEC);
    if (!launcher.Start(Shell(1, "echo $$; exec sleep 30")).ok()) _exit(1);
    RecordingSink sink;
    while (sink.text(1, 1).empty()) (void)launcher.Wait(1000, -1, &sink);
    std::string pid = sink.text(1, 1);
    if (write(pids[1], pid.data(), pid.size()) < 0) _exit(1);
    for (;;) pause();  // until the test kills it
  }
  close(pids[1]);
  char buf[32] = {};
  ASSERT_GT(read(pids[0], buf, sizeof(buf) - 1), 0);
  close(pids[0]);
  pid_t task = std::stoi(buf);
  ASSERT_EQ(kill(engine, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(engine, &status, 0), engine);
  // The orphan is ours now: it must die of its parent-death signal.
  ASSERT_EQ(waitpid(task, &status, 0), task);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  prctl(PR_SET_CHILD_SUBREAPER, 0);
}

TEST(ProcessLauncherTest, TaskExecRefusesToRunWhenTheEngineIsAlreadyGone) {
  ProcessLauncher launcher;
  RecordingSink sink;
  // Its "engine" is pid 1, which is not its parent: as if the engine had
  // died between the spawn and the check.
  ASSERT_OK(launcher.Start(Shell(1, std::string(CAIRN_TEST_TASK_EXEC) + " 1 /bin/echo ran")));
  auto exits = RunToEnd(&launcher, &sink);
  EXPECT_EQ(exits[1].exit_code, 1);
  EXPECT_EQ(sink.text(1, 1), "");
}

TEST(ProcessLauncherTest, EnvironmentAddsCommandEnvAndResultFd) {
  ProcessLauncher launcher;
  RecordingSink sink;
  TaskCommand command = Shell(1, "echo \"$CAIRN_TEST_VAR $CAIRN_RESULT_FD $HOME\"");
  command.env = {"CAIRN_TEST_VAR=hello world", "HOME=/elsewhere"};
  ASSERT_OK(launcher.Start(command));
  RunToEnd(&launcher, &sink);
  EXPECT_EQ(sink.text(1, 1), "hello world 3 /elsewhere\n");
}

TEST(ProcessLauncherTest, TwentyConcurrentTasksAllComplete) {
  ProcessLauncher launcher;
  RecordingSink sink;
  for (TaskKey key = 0; key < 20; ++key) {
    ASSERT_OK(launcher.Start(Shell(key, "echo task " + std::to_string(key) +
                                            "; exit " + std::to_string(key % 3))));
  }
  EXPECT_EQ(launcher.running(), 20);
  auto exits = RunToEnd(&launcher, &sink);
  ASSERT_EQ(exits.size(), 20u);
  for (TaskKey key = 0; key < 20; ++key) {
    EXPECT_EQ(exits[key].exit_code, key % 3);
    EXPECT_EQ(sink.text(key, 1), "task " + std::to_string(key) + "\n");
  }
}

TEST(ProcessLauncherTest, HundredMegabytesStreamInBoundedChunks) {
  ProcessLauncher launcher;
  RecordingSink sink(/*count_only=*/true);
  ASSERT_OK(launcher.Start(Shell(1, "head -c 100000000 /dev/zero")));
  auto exits = RunToEnd(&launcher, &sink);
  EXPECT_EQ(exits[1].exit_code, 0);
  EXPECT_EQ(sink.bytes(1, 1), 100000000u);
  EXPECT_LE(sink.max_chunk(), 64u * 1024);
}

TEST(ProcessLauncherTest, MissingProgramExitsWith127WithOrWithoutTaskExec) {
  for (const char* task_exec : {"", CAIRN_TEST_TASK_EXEC}) {
    ProcessLauncher launcher(task_exec);
    RecordingSink sink;
    TaskCommand command;
    command.key = 1;
    command.argv = {"cairn-no-such-program"};
    ASSERT_OK(launcher.Start(command));
    auto exits = RunToEnd(&launcher, &sink);
    EXPECT_EQ(exits[1].kind, ExitKind::kExited);
    EXPECT_EQ(exits[1].exit_code, 127);
    EXPECT_NE(sink.text(1, 2).find("cannot run 'cairn-no-such-program'"), std::string::npos)
        << sink.text(1, 2);
  }
}

TEST(ProcessLauncherTest, RejectsEmptyArgvAndDuplicateKey) {
  ProcessLauncher launcher;
  TaskCommand empty;
  EXPECT_EQ(launcher.Start(empty).code(), Status::Code::kInvalidArgument);
  ASSERT_OK(launcher.Start(Shell(1, "sleep 30")));
  EXPECT_EQ(launcher.Start(Shell(1, "true")).code(), Status::Code::kInvalidArgument);
  launcher.KillAll();
  RunToEnd(&launcher, nullptr);
}

TEST(ProcessLauncherTest, KillAllKillsEverything) {
  ProcessLauncher launcher;
  for (TaskKey key = 0; key < 3; ++key) ASSERT_OK(launcher.Start(Shell(key, "sleep 30")));
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

TEST(ProcessLauncherTest, ByteOnWakeFdMakesWaitReturnPromptly) {
  ProcessLauncher launcher;
  ASSERT_OK(launcher.Start(Shell(1, "sleep 30")));
  int wake[2];
  ASSERT_EQ(pipe(wake), 0);
  ASSERT_EQ(write(wake[1], "x", 1), 1);
  double start = MonotonicSeconds();
  auto ended = launcher.Wait(10000, wake[0], nullptr);
  ASSERT_OK(ended);
  EXPECT_TRUE(ended->empty());
  EXPECT_LT(MonotonicSeconds() - start, 1);
  close(wake[0]);
  close(wake[1]);
  launcher.KillAll();
  RunToEnd(&launcher, nullptr);
}

TEST(ProcessLauncherTest, DestructorKillsRunningTasks) {
  RecordingSink sink;
  pid_t grandchild = 0;
  {
    ProcessLauncher launcher;
    ASSERT_OK(launcher.Start(Shell(1, "sleep 30 & echo $!; wait")));
    while (sink.text(1, 1).find('\n') == std::string::npos) {
      ASSERT_OK(launcher.Wait(1000, -1, &sink));
    }
    grandchild = std::stoi(sink.text(1, 1));
  }
  EXPECT_TRUE(ProcessGone(grandchild));
}

TEST(ProcessLauncherTest, WaitWithNothingToWaitForReturns) {
  ProcessLauncher launcher;
  auto ended = launcher.Wait(-1, -1, nullptr);
  ASSERT_OK(ended);
  EXPECT_TRUE(ended->empty());
}

}  // namespace
}  // namespace cairn
