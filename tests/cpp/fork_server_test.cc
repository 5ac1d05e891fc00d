// ForkServer against the real WorkerLauncher: the two ends of the worker
// protocol, in real processes. The server's children exec /bin/sh with the
// payload as the script.
#include "exec/fork_server.h"

#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "exec/worker_launcher.h"
#include "test_util.h"
#include "util/time.h"

namespace cairn {
namespace {

struct Worker {
  int fd;     // the engine's end
  pid_t pid;
};

// `prepare_log`: the server appends the key of each request it prepares.
Worker StartWorker(const std::string& prepare_log) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) std::abort();
  pid_t pid = fork();
  if (pid == 0) {
    close(sv[0]);
    auto server = ForkServer::Start(sv[1], getppid());
    if (!server.ok()) _exit(90);
    auto request = (*server)->Serve(
        [&](const ForkRequest& r) { std::ofstream(prepare_log, std::ios::app) << r.key << "\n"; },
        [] { return ::fork(); });
    if (!request.ok()) _exit(91);
    if (!request->has_value()) _exit(0);
    ForkRequest& r = **request;
    for (const auto& [name, value] : r.env) setenv(name.c_str(), value.c_str(), 1);
    dup2(r.fds[0], 1);
    dup2(r.fds[1], 2);
    dup2(r.fds[2], 3);
    setpgid(0, 0);
    execl("/bin/sh", "sh", "-c", r.payload.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(sv[1]);
  return {sv[0], pid};
}

class Output : public OutputSink {
 public:
  void OnOutput(TaskKey key, int stream, std::string_view data) override { text[{key, stream}].append(data); }
  std::map<std::pair<TaskKey, int>, std::string> text;
};

TaskCommand Script(TaskKey key, std::string script, std::vector<std::string> preload = {}) {
  TaskCommand command;
  command.key = key;
  command.payload = std::move(script);
  command.preload = std::move(preload);
  return command;
}

std::map<TaskKey, TaskExit> RunToEnd(Launcher& launcher, OutputSink* sink) {
  std::map<TaskKey, TaskExit> exits;
  for (double give_up = MonotonicSeconds() + 20; launcher.running() > 0 && MonotonicSeconds() < give_up;) {
    auto ended = launcher.Wait(1000, -1, sink);
    EXPECT_TRUE(ended.ok()) << ended.status().ToString();
    if (!ended.ok()) break;
    for (TaskExit& exit : *ended) exits[exit.key] = std::move(exit);
  }
  EXPECT_EQ(launcher.running(), 0);
  return exits;
}

TEST(ForkServerTest, EachRequestCarriesItsOwnEnv) {
  test::TempDir dir;
  Worker worker = StartWorker(dir.Join("prepared"));
  WorkerLauncher launcher(worker.fd, worker.pid);
  Output out;
  TaskCommand with_env = Script(1, "echo \"$GREETING/$OTHER\"");
  with_env.env = {"GREETING=hello world", "OTHER=a=b"};
  ASSERT_OK(launcher.Start(with_env));
  ASSERT_OK(launcher.Start(Script(2, "echo \"${GREETING-unset}\"")));
  auto exits = RunToEnd(launcher, &out);
  ASSERT_EQ(exits.size(), 2u);
  EXPECT_EQ((out.text[{1, 1}]), "hello world/a=b\n");
  EXPECT_EQ((out.text[{2, 1}]), "unset\n");
  close(worker.fd);
  int status = 0;
  waitpid(worker.pid, &status, 0);
}

TEST(ForkServerTest, TasksRunWithTheirPipesAndTheirExitsComeBack) {
  test::TempDir dir;
  Worker worker = StartWorker(dir.Join("prepared"));
  WorkerLauncher launcher(worker.fd, worker.pid);
  Output out;
  ASSERT_OK(launcher.Start(Script(1, "echo out; echo err >&2; echo '{\"r\":1}' >&3; exit 3")));
  ASSERT_OK(launcher.Start(Script(2, "kill -SEGV $$")));
  auto exits = RunToEnd(launcher, &out);
  ASSERT_EQ(exits.size(), 2u);
  EXPECT_EQ(exits[1].kind, ExitKind::kExited);
  EXPECT_EQ(exits[1].exit_code, 3);
  EXPECT_EQ(exits[1].result, "{\"r\":1}\n");
  EXPECT_EQ((out.text[{1, 1}]), "out\n");
  EXPECT_EQ((out.text[{1, 2}]), "err\n");
  EXPECT_EQ(exits[2].kind, ExitKind::kSignaled);
  EXPECT_EQ(exits[2].signal, SIGSEGV);
}

TEST(ForkServerTest, PreparesOnlyForADigestItHasNotSeen) {
  test::TempDir dir;
  std::string log = dir.Join("prepared");
  Worker worker = StartWorker(log);
  WorkerLauncher launcher(worker.fd, worker.pid);
  ASSERT_OK(launcher.Start(Script(1, "true", {"aaaa"})));
  ASSERT_OK(launcher.Start(Script(2, "true", {"aaaa"})));
  ASSERT_OK(launcher.Start(Script(3, "true", {"aaaa", "bbbb"})));
  ASSERT_OK(launcher.Start(Script(4, "true")));
  auto exits = RunToEnd(launcher, nullptr);
  EXPECT_EQ(exits.size(), 4u);
  std::stringstream prepared;
  prepared << std::ifstream(log).rdbuf();
  EXPECT_EQ(prepared.str(), "1\n3\n");
}

}  // namespace
}  // namespace cairn
