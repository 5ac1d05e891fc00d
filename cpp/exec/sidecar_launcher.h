// SidecarLauncher: runs tasks on a remote backend (Ray) through a long-lived
// sidecar process that drives it; the engine keeps scheduling, retries and
// timeouts, the sidecar only carries tasks out.
#pragma once

#include <set>
#include <sys/types.h>

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
//
// The peer writes the task's output and result into the three pipes it was
// handed, as they arrive from the node. Owns what WorkerLauncher owns.
class SidecarLauncher : public WorkerLauncher {
 public:
  SidecarLauncher(int socket_fd, pid_t sidecar_pid);

 protected:
  void KillTask(RunningTask* task) override;

 private:
  std::set<TaskKey> kills_sent_;
};

}  // namespace cairn
