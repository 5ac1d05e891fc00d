// EventSink: progress hooks the Engine calls as a run proceeds. The console
// implementation prints; tests record. Called on the engine thread only.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "engine/run_options.h"

namespace cairn {

struct TaskEvent {
  int64_t run_id = 0;
  std::string step;
  int64_t task_id = 0;
  int attempt = 0;
  int foreach_index = -1;  // innermost foreach index, -1 if none
  int foreach_width = 0;   // innermost foreach width, 0 if none
};

struct TaskEnd {
  bool succeeded = false;
  bool cloned = false;     // resume reused it from the origin run
  bool will_retry = false;
  std::string reason;      // one line when it failed
  std::string stderr_tail; // last lines of stderr when it failed
};

class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void RunStarted(int64_t run_id, const std::string& flow, int64_t origin_run_id) {}
  virtual void TaskStarted(const TaskEvent& task) {}
  // One line of a task's output, without its newline. stream: 1 or 2.
  virtual void TaskOutput(const TaskEvent& task, int stream, std::string_view line) {}
  virtual void TaskFinished(const TaskEvent& task, const TaskEnd& end) {}
  // A line about the run as a whole (what resume reused, and why).
  virtual void Note(const std::string& line) {}
  virtual void RunFinished(const RunSummary& summary) {}
};

}  // namespace cairn
