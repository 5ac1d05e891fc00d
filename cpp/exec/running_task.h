// Bookkeeping shared by the launchers: a started task's pipes, deadlines and
// exit, and the poll()-driven reading of its output. The launchers differ only
// in how they start processes and learn that they exited.
#pragma once

#include <poll.h>
#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "exec/launcher.h"
#include "util/status.h"

namespace cairn {

// The three pipes a task writes to. The read ends are O_CLOEXEC and
// non-blocking (the engine polls them); the write ends are O_CLOEXEC and
// numbered 4 or more, so that dup2()ing them onto 1, 2 and 3 in the child can
// never clobber one another. Closes whatever it still owns on destruction.
struct TaskPipes {
  TaskPipes() = default;
  ~TaskPipes();
  TaskPipes(const TaskPipes&) = delete;
  TaskPipes& operator=(const TaskPipes&) = delete;

  Status Open();
  void CloseWriteEnds();

  int read[3] = {-1, -1, -1};   // stdout, stderr, result
  int write[3] = {-1, -1, -1};
};

// One task a launcher has started and not yet reported as ended.
struct RunningTask {
  enum Stream { kStdout = 0, kStderr = 1, kResult = 2 };

  bool pipes_closed() const { return fds[0] < 0 && fds[1] < 0 && fds[2] < 0; }
  // Ended: the process is gone and every pipe reached EOF (or was given up).
  bool ended() const { return exited && pipes_closed(); }

  TaskKey key = 0;
  pid_t pid = -1;                // -1 until known (the worker reports it)
  int fds[3] = {-1, -1, -1};     // pipe read ends, indexed by Stream; -1 at EOF
  // Optional fd that becomes readable when the process exits (a pidfd); only
  // a wake-up source for poll(). Closed once the process is known to be gone.
  int exit_fd = -1;
  std::string result;            // bytes read from the result pipe so far
  double started_at = 0;         // wall seconds
  double deadline = 0;           // monotonic seconds; 0: no timeout
  double drain_deadline = 0;     // monotonic; set when the process exits
  bool exited = false;           // wait_status (or lost) is final
  int wait_status = 0;           // raw waitpid() status
  bool timed_out = false;        // the launcher killed it at its deadline
  bool lost = false;             // the launcher cannot know how it ended
  bool kill_pending = false;     // a kill was asked for before pid was known
};

// SIGKILLs the process group led by `pid` (every task leads its own group),
// so that grandchildren die too. No-op if pid is not known yet.
void KillProcessGroup(pid_t pid);

// Returns a pidfd for `pid`, or -1 where the kernel has none (before Linux
// 5.3, or blocked by seccomp); callers then fall back to polling.
int OpenExitFd(pid_t pid);

// The tasks one launcher is running, keyed by TaskKey. Owns their pipe read
// ends, exit fds and payload files; the launcher owns the processes. Single
// threaded, like the engine.
class RunningTasks {
 public:
  RunningTasks();
  // Closes every fd and removes every payload file still held.
  ~RunningTasks();
  RunningTasks(const RunningTasks&) = delete;
  RunningTasks& operator=(const RunningTasks&) = delete;

  // REQUIRES: !Contains(key). The pointer stays valid until TakeEnded()
  // returns the task.
  RunningTask* Add(TaskKey key, double timeout_s);
  RunningTask* Find(TaskKey key);
  bool Contains(TaskKey key) const { return tasks_.count(key) != 0; }
  int size() const { return static_cast<int>(tasks_.size()); }
  std::map<TaskKey, RunningTask>& tasks() { return tasks_; }

  // `timeout_ms` (-1: forever) shortened to the nearest timeout or drain
  // deadline; 0 if a task has already ended and waits to be reported.
  int PollTimeout(int timeout_ms) const;

  // Appends a pollfd for every open pipe and exit fd. ReadReady() must get
  // the same vector back, with no Add() or TakeEnded() in between.
  void AddPollFds(std::vector<pollfd>* pfds);
  // Reads once (up to 64 KiB) from every pipe poll() found ready: stdout and
  // stderr go to `sink` (may be null), result bytes into the task.
  void ReadReady(const std::vector<pollfd>& pfds, OutputSink* sink);

  // Records that the task's process is gone, with raw waitpid() `status`.
  void MarkExited(RunningTask* task, int status);
  void MarkLost(RunningTask* task);

  // Marks and returns the tasks whose timeout has passed and that are still
  // running; the caller kills them.
  std::vector<RunningTask*> TakeExpired();
  // Gives up on pipes still open long after their process exited: something
  // outside the task's process group (a setsid daemon, a fork() in another
  // thread of the engine's process) holds them, and must not hang the run.
  void CloseStalePipes(OutputSink* sink);
  // Removes and returns the tasks that have ended.
  std::vector<TaskExit> TakeEnded();

 private:
  // One read; closes the pipe at EOF or on error. Returns false when there
  // was nothing to read.
  bool ReadOnce(RunningTask* task, int stream, OutputSink* sink);
  void Release(RunningTask* task);

  std::map<TaskKey, RunningTask> tasks_;
  // Which pipe each pollfd from AddPollFds() belongs to, starting at
  // first_polled_ in the caller's vector; stream -1 marks an exit fd.
  struct Polled {
    RunningTask* task;
    int stream;
  };
  std::vector<Polled> polled_;
  size_t first_polled_ = 0;
  std::vector<char> buffer_;
};

}  // namespace cairn
