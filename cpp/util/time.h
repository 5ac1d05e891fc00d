// Clocks: wall time for records, monotonic time for deadlines.
#pragma once

#include <chrono>

namespace cairn {

// Seconds since the Unix epoch, as stored in the datastore.
inline double WallSeconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

// Seconds on a clock that never jumps; only differences mean anything.
inline double MonotonicSeconds() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

}  // namespace cairn
