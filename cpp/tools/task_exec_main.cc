// cairn-task-exec: how the spawn launcher starts a task. posix_spawn cannot
// ask for a parent-death signal, and a task that asks for one itself (after
// the interpreter started and the flow was imported) leaves a window in
// which an engine killed with SIGKILL leaves it running. This program sets
// the signal, checks that the engine is still its parent, then execs the
// task: the signal survives exec.
//
//   cairn-task-exec ENGINE_PID PROGRAM [ARG...]
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "exec/task_process.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: cairn-task-exec ENGINE_PID PROGRAM [ARG...]\n");
    return 2;
  }
  char* end = nullptr;
  long engine = std::strtol(argv[1], &end, 10);
  if (*end != '\0' || engine <= 0) {
    std::fprintf(stderr, "cairn-task-exec: bad engine pid '%s'\n", argv[1]);
    return 2;
  }
  // Exits at once if the engine is already gone.
  cairn::Status st = cairn::DieWithParent(static_cast<pid_t>(engine));
  if (!st.ok()) {
    std::fprintf(stderr, "cairn-task-exec: %s\n", st.message().c_str());
    return 1;
  }
  execvp(argv[2], argv + 2);
  // Reported as the launcher reports a program it cannot spawn.
  std::fprintf(stderr, "cairn: cannot run '%s': %s\n", argv[2], std::strerror(errno));
  return 127;
}
