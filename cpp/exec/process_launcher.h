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
// stdout and stderr piped to the OutputSink, and the result pipe at fd 3.
// The task's environment is the engine's plus TaskCommand::env plus
// CAIRN_RESULT_FD=3 and CAIRN_TASK_PAYLOAD=<file holding the payload>.
//
// Owns its child processes and reaps only them (waitpid on their pids), so
// the host process may have children of its own. Destruction kills and reaps
// whatever is still running. Single threaded.
class ProcessLauncher : public Launcher {
 public:
  // Payload files are written to `tmp_dir` ("": $TMPDIR, else /tmp) and
  // removed when their task ends.
  explicit ProcessLauncher(std::string tmp_dir);
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

  std::string tmp_dir_;
  RunningTasks tasks_;
  std::vector<pollfd> pfds_;  // reused by Wait()
};

}  // namespace cairn
