// ConsoleSink: prints a run's progress as Metaflow users know it: a line per
// task start/finish and each line of task output, prefixed
// "TIME [run/step/task]". On a terminal a wide foreach collapses into one
// live progress line per step.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <string_view>

#include "engine/event_sink.h"

namespace cairn {

struct ConsoleOptions {
  bool quiet = false;           // no per-task start/finish lines; output and failures still shown
  bool live_progress = false;   // terminal: collapse wide foreaches into progress lines
  int progress_min_width = 20;  // foreaches at least this wide get a progress line
  double redraw_interval = 0.1; // seconds between redraws of the progress lines, at most
};

// Not thread-safe: the engine calls it from its one thread. Does not own the
// FILEs it writes to.
class ConsoleSink : public EventSink {
 public:
  // Status lines and task stdout go to `out`, task stderr to `err`.
  ConsoleSink(std::FILE* out, std::FILE* err, ConsoleOptions options);
  void RunStarted(int64_t run_id, const std::string& flow, int64_t origin_run_id) override;
  void TaskStarted(const TaskEvent& task) override;
  void TaskOutput(const TaskEvent& task, int stream, std::string_view line) override;
  void TaskFinished(const TaskEvent& task, const TaskEnd& end) override;
  void Note(const std::string& line) override;
  void RunFinished(const RunSummary& summary) override;

 private:
  // The tasks of one collapsed step. A step inside a nested foreach belongs to
  // several split instances; each has exactly one task of index 0, whose
  // width is that instance's number of tasks, so `total` is the sum of the
  // widths of the index-0 tasks seen so far.
  struct StepProgress {
    int total = 0, started = 0, running = 0, done = 0, failed = 0;
    double first_start = 0;
    int Total() const { return total > started ? total : started; }
    bool Complete() const { return running == 0 && done + failed >= Total(); }
  };

  bool Collapsed(const TaskEvent& task) const;
  void Line(const TaskEvent* task, const std::string& text, std::FILE* to);
  // Write and Flush drop the output of a stream once a write to it failed.
  void Write(std::FILE* to, std::string_view text);
  void Flush(std::FILE* to);
  void Failure(const TaskEvent& task, const TaskEnd& end);
  // `final`: the line is printed for good (the step finished, or the run ended).
  std::string ProgressText(const std::string& step, const StepProgress& p, bool final) const;
  // Prints the line of a step whose known tasks have all finished, for good.
  void Retire(const std::string& step);
  void RedrawProgress(bool force);
  void ClearProgress();

  std::FILE* out_;
  std::FILE* err_;
  ConsoleOptions options_;
  // stdout and stderr are both a terminal: a failed task's stderr has just
  // been shown there, line by line, and is not repeated.
  bool stderr_on_screen_ = false;
  bool out_broken_ = false;
  bool err_broken_ = false;
  std::string flow_;
  std::map<std::string, StepProgress> progress_;  // steps with a live line
  int64_t run_id_ = 0;
  int drawn_lines_ = 0;  // progress lines now at the bottom of the screen
  double last_draw_ = 0;
};

}  // namespace cairn
