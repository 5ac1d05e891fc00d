// ProcessIdentity: who a process is, beyond its pid: the pid, its start time
// and the machine (host name and boot). Lets a reader tell whether the process
// that wrote a record is still alive, and not mistake another process that got
// the same pid (after a reboot, or on another machine) for it.
#pragma once

#include <cstdint>
#include <string>

namespace cairn {

struct ProcessIdentity {
  int64_t pid = 0;
  int64_t start_ticks = 0;  // /proc/<pid>/stat field 22 (clock ticks since boot); 0: unknown
  std::string machine;      // "<host name>/<boot id>"; "" unknown
};

// The calling process.
ProcessIdentity SelfIdentity();

enum class Liveness {
  kAlive,    // that very process is running
  kGone,     // it exited (or is a zombie), or its pid is now another process's
  kUnknown,  // on another machine or boot, or too little was recorded to tell
};

Liveness CheckProcess(const ProcessIdentity& id);

}  // namespace cairn
