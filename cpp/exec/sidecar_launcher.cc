#include "exec/sidecar_launcher.h"

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace cairn {

SidecarLauncher::SidecarLauncher(int socket_fd, pid_t sidecar_pid)
    : WorkerLauncher(socket_fd, sidecar_pid, /*local_pids=*/false) {}

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
