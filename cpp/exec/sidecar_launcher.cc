#include "exec/sidecar_launcher.h"

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "util/time.h"

namespace cairn {

SidecarLauncher::SidecarLauncher(int socket_fd, pid_t sidecar_pid, double backstop_s)
    : WorkerLauncher(socket_fd, sidecar_pid, /*local_pids=*/false), backstop_s_(backstop_s) {
  exit_grace_s_ = kExitGraceS;
}

Status SidecarLauncher::Start(const TaskCommand& command) {
  kills_sent_.erase(command.key);  // a retry reuses its task's key
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
}

}  // namespace cairn
