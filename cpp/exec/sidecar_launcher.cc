#include "exec/sidecar_launcher.h"

#include <signal.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "util/time.h"

namespace cairn {

SidecarLauncher::SidecarLauncher(int socket_fd, pid_t sidecar_pid, double backstop_s, double kill_wait_s)
    : WorkerLauncher(socket_fd, sidecar_pid, /*local_pids=*/false),
      sidecar_pid_(sidecar_pid),
      backstop_s_(backstop_s),
      kill_wait_s_(kill_wait_s) {
  exit_grace_s_ = kExitGraceS;
}

Status SidecarLauncher::Start(const TaskCommand& command) {
  kills_sent_.erase(command.key);  // a retry reuses its task's key
  kill_deadlines_.erase(command.key);
  TaskCommand untimed = command;
  untimed.timeout_s = 0;  // the clock starts with the task, in OnStarted
  CAIRN_RETURN_IF_ERROR(WorkerLauncher::Start(untimed));
  if (command.timeout_s > 0) timeouts_[command.key] = command.timeout_s;
  return Status::OK();
}

void SidecarLauncher::OnStarted(RunningTask* task) {
  auto it = timeouts_.find(task->key);
  if (it == timeouts_.end()) return;
  task->deadline = MonotonicSeconds() + it->second + backstop_s_;
  timeouts_.erase(it);
}

void SidecarLauncher::KillTask(RunningTask* task) {
  if (!kills_sent_.insert(task->key).second) return;
  std::string header = nlohmann::json{{"key", task->key}, {"kill", true}}.dump();
  std::string frame;
  uint32_t lengths[2] = {static_cast<uint32_t>(header.size()), 0};
  for (uint32_t value : lengths) {
    for (int i = 0; i < 4; ++i) frame.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
  }
  frame += header;
  // A sidecar that is gone has lost the task already; nothing more to do.
  (void)SendRequest(frame, nullptr);
  kill_deadlines_[task->key] = MonotonicSeconds() + kill_wait_s_;
}

Result<std::vector<TaskExit>> SidecarLauncher::Wait(int timeout_ms, int wake_fd, OutputSink* sink) {
  double now = MonotonicSeconds();
  for (const auto& [key, deadline] : kill_deadlines_) {
    int until = deadline <= now ? 0 : static_cast<int>(std::ceil((deadline - now) * 1000.0));
    timeout_ms = timeout_ms < 0 ? until : std::min(timeout_ms, until);
  }
  CAIRN_ASSIGN_OR_RETURN(std::vector<TaskExit> exits, WorkerLauncher::Wait(timeout_ms, wake_fd, sink));
  for (const TaskExit& exit : exits) kill_deadlines_.erase(exit.key);
  now = MonotonicSeconds();
  bool hung = false;
  for (const auto& [key, deadline] : kill_deadlines_) hung |= deadline <= now;
  if (hung && worker_alive()) {
    AbandonSidecar();
    // Its tasks are lost now; report them in this round.
    CAIRN_ASSIGN_OR_RETURN(std::vector<TaskExit> lost, WorkerLauncher::Wait(0, -1, sink));
    for (TaskExit& exit : lost) exits.push_back(std::move(exit));
  }
  return exits;
}

void SidecarLauncher::AbandonSidecar() {
  kill_deadlines_.clear();
  if (sidecar_pid_ > 0) {
    // Its process group (the sidecar leads one: backends/launch.py), then
    // the process itself in case it does not lead one.
    kill(-sidecar_pid_, SIGKILL);
    kill(sidecar_pid_, SIGKILL);
  }
  LoseWorker();
}

}  // namespace cairn
