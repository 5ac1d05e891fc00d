// Calls made inside task and worker processes (from Python, through the
// bindings) so that killing the engine, even with SIGKILL, takes every task
// down with it: engine dies -> worker gets SIGKILL -> its children get SIGKILL.
#pragma once

#include <sys/types.h>

#include "util/status.h"

namespace cairn {

// Makes the calling process the leader of its own process group (so the
// launcher can kill it and its descendants as one) and asks for SIGKILL when
// its parent dies. Call it in a forked task child before running user code.
//
// The parent-death signal fires when the *thread* that forked or spawned us
// exits, not the whole parent process, and is cleared across fork(): each
// generation must call this (or DieWithParent) itself. Where the platform has
// no parent-death signal (outside Linux) only the process group is set.
Status BecomeTaskProcess();

// Everything a child forked by the worker does before it runs the task, in
// C++ so that it copies as few of the worker's pages as it can: default
// dispositions for the signals the worker handled, `stdout_fd` and
// `stderr_fd` moved to 1 and 2, then BecomeTaskProcess().
Status BecomeForkedTask(int stdout_fd, int stderr_fd);

// Asks for SIGKILL when the parent dies, then exits at once if the parent is
// no longer `expected_parent`: it died before the request was in place, and
// the signal will never come. For the worker, with the engine's pid.
Status DieWithParent(pid_t expected_parent);

}  // namespace cairn
