// ConsoleSink: prints a run's progress as Metaflow users know it: a line per
// task start/finish and each line of task output, prefixed
// "TIME [run/step/task]". On a terminal a wide foreach collapses into one
// live progress line per step.
#pragma once

#include <cstdio>
#include <map>
#include <string>

#include "engine/event_sink.h"

namespace cairn {

struct ConsoleOptions {
  bool quiet = false;        // no per-task start/finish lines, output still shown
  bool live_progress = false;  // terminal: collapse wide foreaches into progress lines
  int progress_min_width = 20; // foreaches at least this wide get a progress line
};

class ConsoleSink : public EventSink {
 public:
  // Status lines and task stdout go to `out`, task stderr to `err` (not owned).
  ConsoleSink(std::FILE* out, std::FILE* err, ConsoleOptions options);
  void RunStarted(int64_t run_id, const std::string& flow, int64_t origin_run_id) override;
  void TaskStarted(const TaskEvent& task) override;
  void TaskOutput(const TaskEvent& task, int stream, std::string_view line) override;
  void TaskFinished(const TaskEvent& task, const TaskEnd& end) override;
  void RunFinished(const RunSummary& summary) override;

 private:
  struct StepProgress {
    int width = 0, running = 0, done = 0, failed = 0;
    double first_start = 0;
  };
  bool Collapsed(const TaskEvent& task) const;
  void Line(const TaskEvent* task, const std::string& text);
  std::string ProgressText(const std::string& step, const StepProgress& p) const;
  void RedrawProgress(bool force);
  void ClearProgress();

  void Line(const TaskEvent* task, const std::string& text, std::FILE* to);

  std::FILE* out_;
  std::FILE* err_;
  ConsoleOptions options_;
  std::string flow_;
  std::map<std::string, StepProgress> progress_;
  int64_t run_id_ = 0;
  int drawn_lines_ = 0;
  double last_draw_ = 0;
};

}  // namespace cairn
