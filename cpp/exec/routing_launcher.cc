#include "exec/routing_launcher.h"

#include <algorithm>
#include <utility>

namespace cairn {
namespace {
constexpr int kSliceMs = 2;
}  // namespace

RoutingLauncher::RoutingLauncher(std::unique_ptr<Launcher> local, std::unique_ptr<Launcher> remote)
    : local_(std::move(local)), remote_(std::move(remote)) {}

Status RoutingLauncher::Start(const TaskCommand& command) {
  return command.backend.empty() ? local_->Start(command) : remote_->Start(command);
}

Result<std::vector<TaskExit>> RoutingLauncher::Wait(int timeout_ms, int wake_fd, OutputSink* sink) {
  bool local_busy = local_->running() > 0;
  bool remote_busy = remote_->running() > 0;
  if (!(local_busy && remote_busy)) {
    Launcher* only = remote_busy ? remote_.get() : local_.get();
    return only->Wait(timeout_ms, wake_fd, sink);
  }
  remote_first_ = !remote_first_;
  Launcher* first = remote_first_ ? remote_.get() : local_.get();
  Launcher* second = remote_first_ ? local_.get() : remote_.get();
  int slice = timeout_ms < 0 ? kSliceMs : std::min(timeout_ms, kSliceMs);
  CAIRN_ASSIGN_OR_RETURN(std::vector<TaskExit> exits, first->Wait(0, -1, sink));
  CAIRN_ASSIGN_OR_RETURN(std::vector<TaskExit> more,
                         second->Wait(exits.empty() ? slice : 0, wake_fd, sink));
  for (TaskExit& e : more) exits.push_back(std::move(e));
  return exits;
}

void RoutingLauncher::KillAll() {
  local_->KillAll();
  remote_->KillAll();
}

}  // namespace cairn
