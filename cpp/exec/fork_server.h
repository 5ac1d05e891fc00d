// ForkServer: the worker's side of the WorkerLauncher protocol
// (worker_launcher.h). It runs in the worker process, forks one child per
// request and reports pids and exit statuses. It is C++ so that the worker
// executes no Python between forks: every page a process writes after fork()
// is copied, and an interpreter loop writes many.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "util/result.h"

namespace cairn {

struct ForkRequest {
  int64_t key = 0;
  std::string header;   // the request's JSON header
  std::string payload;  // TaskCommand::payload, verbatim
  std::vector<std::pair<std::string, std::string>> env;  // the header's "env"
  int fds[3] = {-1, -1, -1};  // the task's stdout, stderr and result pipes
};

// Owns the socket; single-threaded. Parent death (even kill -9 of the engine)
// makes the kernel send SIGTERM, on which every task's process group is
// killed before the worker exits: what a task started does not outlive it.
class ForkServer {
 public:
  // `parent`: the engine's pid; if it is already gone, the worker exits.
  static Result<std::unique_ptr<ForkServer>> Start(int socket_fd, pid_t parent);
  ~ForkServer();
  ForkServer(const ForkServer&) = delete;
  ForkServer& operator=(const ForkServer&) = delete;

  // `prepare` runs before forking, only for requests whose "preload" names a
  // digest not seen before. `fork` forks the process (0 in the child).
  using PrepareFn = std::function<void(const ForkRequest&)>;
  using ForkFn = std::function<pid_t()>;
  // Serves until a request is to be run: returns it in the child (with the
  // server's descriptors closed and its signal mask restored), or nullopt in
  // the worker once the engine closed the socket (leftover task groups killed).
  // On an error (the engine gone mid-request, a failed reply) the task
  // groups are killed before it returns, as at the end of input.
  Result<std::optional<ForkRequest>> Serve(const PrepareFn& prepare, const ForkFn& fork);

 private:
  Result<std::optional<ForkRequest>> ServeRequests(const PrepareFn& prepare, const ForkFn& fork);
  ForkServer(int socket_fd, int signal_fd);
  Result<bool> ReadRequest(ForkRequest* request);  // false: end of input
  Status Send(const std::string& line);
  Status Reap();
  void KillGroups();
  // In the child: dies with the worker (checked against `worker`, its pid,
  // so a worker gone before the request is noticed), then drops the server's state.
  void BecomeChild(pid_t worker);

  int socket_fd_;
  int signal_fd_;
  std::unordered_map<pid_t, int64_t> children_;
  std::unordered_set<std::string> prepared_;
};

}  // namespace cairn
