// ProcessLauncher: runs each task as a fresh process from its argv (the
// standalone path, and the native `cairn` tool's only path).
#pragma once

#include <poll.h>

#include <string>
#include <vector>

#include "exec/launcher.h"
#include "exec/running_task.h"

namespace cairn {

// Spawns tasks with posix_spawn (never fork: the engine lives in a threaded
// Python process), each in its own process group, with stdin from /dev/null,
// stdout and stderr piped to the OutputSink, the result pipe at fd 3 and the
// payload at fd 4 (a memfd: it has no name on disk, so nothing is left
// behind whenever the engine dies). The task's environment is the engine's
// plus TaskCommand::env plus CAIRN_RESULT_FD=3 and
// CAIRN_TASK_PAYLOAD=/dev/fd/4.
//
// posix_spawn cannot set a parent-death signal, so with `task_exec` (the
// path of the cairn-task-exec program) each task is started through it: it
// asks for SIGKILL when the engine dies, checks that the engine is still its
// parent, then execs the task's argv. No moment exists in which the task
// runs without the death signal.
//
// Owns its child processes and reaps only them (waitpid on their pids), so
// the host process may have children of its own. Destruction kills and reaps
// whatever is still running. Single threaded.
class ProcessLauncher : public Launcher {
 public:
  explicit ProcessLauncher(std::string task_exec = "");
  ~ProcessLauncher() override;
  ProcessLauncher(const ProcessLauncher&) = delete;
  ProcessLauncher& operator=(const ProcessLauncher&) = delete;

  // A program that cannot be spawned is not an error here: the task exits
  // with code 127 and the reason on its stderr stream. Errors are for the
  // engine's own resources (pipes, the payload file) and bad commands.
  Status Start(const TaskCommand& command) override;
  Result<std::vector<TaskExit>> Wait(int timeout_ms, int wake_fd,
                                     OutputSink* sink) override;
  void KillAll() override;
  void Kill(TaskKey key) override;
  int running() const override { return tasks_.size(); }

 private:
  // Notices exited children: kills their process group, then reaps them.
  void Reap();

  std::string task_exec_;
  RunningTasks tasks_;
  std::vector<pollfd> pfds_;  // reused by Wait()
};

}  // namespace cairn
