// WorkerLauncher: runs tasks by asking a long-lived Python worker, which has
// imported the flow once, to fork a child per task (milliseconds per task).
#pragma once

#include <poll.h>
#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "exec/launcher.h"
#include "exec/running_task.h"

namespace cairn {

// Talks to the worker over an AF_UNIX SOCK_STREAM socket. The protocol, which
// the Python worker implements:
//
//   Request (engine -> worker), one per task: uint32 header_len, uint32
//   payload_len (both little-endian), the header, then TaskCommand::payload
//   verbatim. The header is JSON {"key": <int>, "env": {"NAME": "value"},
//   "preload": [digest, ...]}.
//   The first sendmsg() of the frame carries SCM_RIGHTS with exactly three
//   fds: the write ends of the task's stdout, stderr and result pipes. The
//   worker's child puts them on fds 1, 2 and its result fd, and sets
//   CAIRN_RESULT_FD itself.
//
//   Replies (worker -> engine), newline-terminated JSON lines:
//   {"key": K, "pid": P} once the child is forked and setpgid(P, P) done;
//   {"key": K, "status": S} once it is reaped (S: raw waitpid status);
//   {"key": K, "lost": true} if the task can no longer be followed (a remote
//   node died; SidecarLauncher's peer sends it);
//   {"key": K, "started": true} when a remote task's process starts, and
//   "timed_out": true with a status if the peer killed it at its timeout
//   (SidecarLauncher's peer).
//
// Timeouts and KillAll SIGKILL the child's process group once its pid is
// known. If the worker dies or closes the socket, unfinished tasks end as
// ExitKind::kLost once their pipes drain, and Start() fails from then on.
//
// Owns the socket, the task pipes, and the duty to reap the worker (which
// must be a child of this process). Single threaded.
class WorkerLauncher : public Launcher {
 public:
  WorkerLauncher(int socket_fd, pid_t worker_pid);
  // Kills running tasks, closes the socket (the worker exits on EOF) and
  // reaps the worker, killing it if it lingers.
  ~WorkerLauncher() override;
  WorkerLauncher(const WorkerLauncher&) = delete;
  WorkerLauncher& operator=(const WorkerLauncher&) = delete;

  // TaskCommand::argv is ignored. Sending blocks until the whole request is
  // in the socket. IOError once the worker is gone.
  Status Start(const TaskCommand& command) override;
  // Corruption if the worker sent a reply that breaks the protocol; the
  // worker is then treated as lost.
  Result<std::vector<TaskExit>> Wait(int timeout_ms, int wake_fd,
                                     OutputSink* sink) override;
  void KillAll() override;
  void Kill(TaskKey key) override;
  int running() const override { return tasks_.size(); }

  bool worker_alive() const { return !worker_gone_; }

 protected:
  // `local_pids`: the peer reports pids of this machine, which the launcher
  // kills itself; otherwise KillTask is the peer's business.
  WorkerLauncher(int socket_fd, pid_t worker_pid, bool local_pids);
  // Stops a task: SIGKILL to its process group, or once its pid is known.
  virtual void KillTask(RunningTask* task);
  // A {"started": true} reply: the task's process runs now.
  virtual void OnStarted(RunningTask* task) { (void)task; }
  // How long the destructor waits for the peer to exit on EOF before
  // killing it (0: the worker's default).
  double exit_grace_s_ = 0;
  // Sends one frame; `fds` (three, or null) ride on its first byte.
  Status SendRequest(const std::string& frame, const int* fds);
  // Stops talking to the worker; unfinished tasks become lost.
  void LoseWorker();

 private:
  // One non-blocking receive; handles every complete line. Sets `*got_data`.
  Status ReadReplies(bool* got_data);
  Status HandleReply(std::string_view line);
  // True once the worker process has exited; reaps it.
  bool WorkerExited();
  void ReapWorker();

  int socket_fd_;
  pid_t worker_pid_;
  bool local_pids_ = true;
  int worker_exit_fd_;          // pidfd of the worker, or -1
  bool worker_gone_ = false;
  bool worker_reaped_ = false;
  std::string replies_;         // received bytes not yet ending in '\n'
  std::vector<char> buffer_;
  RunningTasks tasks_;
  std::vector<pollfd> pfds_;    // reused by Wait()
};

}  // namespace cairn
