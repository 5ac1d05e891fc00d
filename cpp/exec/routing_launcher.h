// RoutingLauncher: sends each task to one of two launchers by the step's
// backend (TaskCommand::backend): "" to the local one, anything else to the
// remote one (the Ray sidecar).
#pragma once

#include <memory>

#include "exec/launcher.h"

namespace cairn {

// Owns both launchers. While both have tasks running, Wait() gives each a
// short slice in turn (kSliceMs), since a Launcher does not expose its fds;
// while only one has, it waits on that one alone, for as long as asked.
class RoutingLauncher : public Launcher {
 public:
  RoutingLauncher(std::unique_ptr<Launcher> local, std::unique_ptr<Launcher> remote);

  Status Start(const TaskCommand& command) override;
  Result<std::vector<TaskExit>> Wait(int timeout_ms, int wake_fd, OutputSink* sink) override;
  void KillAll() override;
  int running() const override { return local_->running() + remote_->running(); }

 private:
  std::unique_ptr<Launcher> local_;
  std::unique_ptr<Launcher> remote_;
  bool remote_first_ = false;
};

}  // namespace cairn
