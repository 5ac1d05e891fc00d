// SidecarLauncher: runs tasks on a remote backend (Ray) through a long-lived
// sidecar process that drives it; the engine keeps scheduling, retries and
// timeouts, the sidecar only carries tasks out.
#pragma once

#include <sys/types.h>

#include <map>
#include <set>
#include <vector>

#include "exec/worker_launcher.h"

namespace cairn {

// Speaks WorkerLauncher's protocol (docs/architecture.md) with two
// differences, because the task's process lives on another machine:
//
//   - the peer never reports a pid, and sends {"key": K, "lost": true} when
//     the task can no longer be followed (its node or actor died);
//   - stopping a task (timeout, KillAll) is a frame of its own: header
//     {"key": K, "kill": true}, empty payload, no fds. The peer kills the
//     task's process group on its node and then reports its status.
//   - a task's timeout counts from {"key": K, "started": true}, not from
//     Start(): waiting for a slot on the cluster is not the step's time. The
//     peer enforces the timeout on the node (and says "timed_out" with the
//     status); this launcher's deadline, kBackstopS later, is the backstop.
//   - a peer that has not ended a task kill_wait_s after its kill frame is
//     hung (alive, not answering): the launcher SIGKILLs the peer's process
//     group (the sidecar leads its own) and every task it still had ends as
//     lost. Without this bound a hung sidecar would hang the run, Ctrl-C
//     included. Tasks started after that fail to start (lost).
//
// The peer writes the task's output and result into the three pipes it was
// handed, as they arrive from the node. Owns what WorkerLauncher owns.
class SidecarLauncher : public WorkerLauncher {
 public:
  static constexpr double kBackstopS = 10.0;
  // The sidecar stops every task and slot on the cluster before it exits.
  static constexpr double kExitGraceS = 30.0;
  // A healthy sidecar ends a killed task in well under a second (the node
  // kills its process group); under the engine's interrupt grace (10 s), so
  // that Ctrl-C still records every attempt.
  static constexpr double kKillWaitS = 5.0;

  // `backstop_s`: how long after a task's timeout the launcher kills it
  // itself if the peer has not reported it ended. `kill_wait_s`: how long
  // the peer has to end a task after its kill frame before it is deemed hung.
  SidecarLauncher(int socket_fd, pid_t sidecar_pid, double backstop_s = kBackstopS,
                  double kill_wait_s = kKillWaitS);

  Status Start(const TaskCommand& command) override;
  Result<std::vector<TaskExit>> Wait(int timeout_ms, int wake_fd, OutputSink* sink) override;

 protected:
  void KillTask(RunningTask* task) override;
  void OnStarted(RunningTask* task) override;

 private:
  // Kills the hung sidecar's process group; its tasks become lost.
  void AbandonSidecar();

  pid_t sidecar_pid_;
  double backstop_s_;
  double kill_wait_s_;
  std::set<TaskKey> kills_sent_;
  std::map<TaskKey, double> kill_deadlines_;  // monotonic; of tasks killed, not yet ended
  std::map<TaskKey, double> timeouts_;  // of tasks not yet started
};

}  // namespace cairn
