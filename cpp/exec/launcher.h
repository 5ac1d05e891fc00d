// Launcher: starts task processes and reports how they ended. The Engine
// talks only to this interface, so its tests can use a fake (ninja's
// CommandRunner).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "sched/plan.h"
#include "util/result.h"

namespace cairn {

struct TaskCommand {
  TaskKey key = 0;
  // ProcessLauncher: the command to spawn. WorkerLauncher: unused (the
  // worker already has the flow loaded).
  std::vector<std::string> argv;
  std::vector<std::string> env;      // extra "NAME=value" entries
  // Text handed to the task: ProcessLauncher writes it to a file named by
  // $CAIRN_TASK_PAYLOAD; WorkerLauncher sends it with the request.
  std::string payload;
  double timeout_s = 0;              // 0: none. The whole process group is killed.
  // The step's backend: "" runs it here; RoutingLauncher sends others away.
  std::string backend;
  // WorkerLauncher: digests of values the worker should load before forking
  // (a foreach's list), so that every child inherits them instead of loading.
  std::vector<std::string> preload;
};

enum class ExitKind {
  kExited,    // exit_code is set
  kSignaled,  // signal is set (SIGSEGV, SIGKILL from the OOM killer, ...)
  kTimedOut,  // killed by the launcher at timeout_s
  kLost,      // the launcher lost track of it (worker died)
};

struct TaskExit {
  TaskKey key = 0;
  ExitKind kind = ExitKind::kExited;
  int exit_code = -1;
  int signal = 0;
  // Everything the task wrote to its result channel (fd $CAIRN_RESULT_FD):
  // a JSON document, or empty if it wrote nothing.
  std::string result;
  double started_at = 0;   // wall seconds
  double finished_at = 0;
};

// Receives task output as it arrives. Chunks are raw bytes, not lines.
class OutputSink {
 public:
  virtual ~OutputSink() = default;
  virtual void OnOutput(TaskKey key, int stream /*1 stdout, 2 stderr*/, std::string_view data) = 0;
};

class Launcher {
 public:
  virtual ~Launcher() = default;
  virtual Status Start(const TaskCommand& command) = 0;
  // Waits up to `timeout_ms` (-1: forever) for output, exits or a byte on
  // `wake_fd` (-1: none); streams output to `sink`; returns the tasks that
  // ended (empty on timeout or wake-up). A task has ended when its process
  // has exited and its output pipes are drained.
  virtual Result<std::vector<TaskExit>> Wait(int timeout_ms, int wake_fd, OutputSink* sink) = 0;
  // Kills every running task's process group (SIGKILL); they are still
  // reported by later Wait calls.
  virtual void KillAll() = 0;
  // Kills one running task's process group (a @parallel gang whose sibling
  // failed); it is still reported by a later Wait call. No-op if it ended.
  virtual void Kill(TaskKey key) { (void)key; }
  virtual int running() const = 0;
};

}  // namespace cairn
