#include "engine/console_sink.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <string>

#include <fmt/format.h>

#include "util/time.h"

namespace cairn {
namespace {

std::string Timestamp() {
  double now = WallSeconds();
  std::time_t secs = static_cast<std::time_t>(now);
  std::tm tm{};
  localtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  int millis = std::min(999, static_cast<int>((now - static_cast<double>(secs)) * 1000));
  return fmt::format("{}.{:03d}", buf, millis);
}

std::string Prefix(const TaskEvent& t) {
  if (t.attempt > 0) return fmt::format("[{}/{}/{} (attempt {})]", t.run_id, t.step, t.task_id, t.attempt);
  return fmt::format("[{}/{}/{}]", t.run_id, t.step, t.task_id);
}

std::string Duration(double seconds) {
  long s = std::lround(seconds);
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02d}s", s / 60, s % 60);
  return fmt::format("{}h{:02d}m", s / 3600, (s % 3600) / 60);
}

}  // namespace

ConsoleSink::ConsoleSink(std::FILE* out, std::FILE* err, ConsoleOptions options)
    : out_(out),
      err_(err),
      options_(options),
      stderr_on_screen_(isatty(fileno(out)) == 1 && isatty(fileno(err)) == 1) {}

bool ConsoleSink::Collapsed(const TaskEvent& task) const {
  return options_.live_progress && task.foreach_width >= options_.progress_min_width;
}

// Ordinary lines print above the progress block: erase it, print, draw it again.
void ConsoleSink::Line(const TaskEvent* task, const std::string& text, std::FILE* to) {
  ClearProgress();
  if (to != out_) Flush(out_);
  if (task) {
    Write(to, fmt::format("{} {} {}\n", Timestamp(), Prefix(*task), text));
  } else {
    Write(to, fmt::format("{} {}\n", Timestamp(), text));
  }
  if (to != out_) Flush(to);
  if (!progress_.empty()) RedrawProgress(true);
  Flush(out_);
}

// A console that cannot be written to (a closed pipe: `run | head`, a full
// disk under a redirect) loses its output, not the run: the record is in the
// datastore. fmt::print would throw instead.
void ConsoleSink::Write(std::FILE* to, std::string_view text) {
  bool& broken = to == out_ ? out_broken_ : err_broken_;
  if (broken) return;
  if (std::fwrite(text.data(), 1, text.size(), to) != text.size()) broken = true;
}

void ConsoleSink::Flush(std::FILE* to) {
  bool& broken = to == out_ ? out_broken_ : err_broken_;
  if (!broken && std::fflush(to) != 0) broken = true;
}

void ConsoleSink::Failure(const TaskEvent& task, const TaskEnd& end) {
  // With stdout in a log file or a pipe, the reason needs its context there.
  if (!end.stderr_tail.empty() && !stderr_on_screen_) {
    Line(&task, "Task failed; the end of its stderr:\n" + end.stderr_tail, out_);
  }
  Line(&task, fmt::format("Task failed: {}{}", end.reason, end.will_retry ? " (will retry)" : ""), out_);
}

void ConsoleSink::RunStarted(int64_t run_id, const std::string& flow, int64_t origin_run_id) {
  flow_ = flow;
  run_id_ = run_id;
  if (origin_run_id) {
    Line(nullptr, fmt::format("Workflow {} resuming run {} (run-id {}):", flow, origin_run_id, run_id), out_);
  } else {
    Line(nullptr, fmt::format("Workflow {} starting (run-id {}):", flow, run_id), out_);
  }
}

void ConsoleSink::Note(const std::string& line) { Line(nullptr, line, out_); }

void ConsoleSink::TaskStarted(const TaskEvent& task) {
  if (Collapsed(task)) {
    StepProgress& p = progress_[task.step];
    if (p.started == 0 && p.running == 0) p.first_start = MonotonicSeconds();
    if (task.attempt == 0) {
      p.started++;
      if (task.foreach_index == 0) p.total += task.foreach_width;
    }
    p.running++;
    RedrawProgress(false);
    return;
  }
  if (!options_.quiet) Line(&task, task.attempt ? "Task is retrying." : "Task is starting.", out_);
}

void ConsoleSink::TaskOutput(const TaskEvent& task, int stream, std::string_view line) {
  Line(&task, std::string(line), stream == 2 ? err_ : out_);
}

void ConsoleSink::TaskFinished(const TaskEvent& task, const TaskEnd& end) {
  if (Collapsed(task)) {
    StepProgress& p = progress_[task.step];
    if (end.cloned) {  // resume: never started, finished at once
      if (p.started == 0 && p.running == 0) p.first_start = MonotonicSeconds();
      p.started++;
      if (task.foreach_index == 0) p.total += task.foreach_width;
    } else {
      p.running--;
    }
    if (!end.will_retry) (end.succeeded ? p.done : p.failed)++;
    if (!end.succeeded) Failure(task, end);
    if (p.Complete()) {
      Retire(task.step);
    } else {
      RedrawProgress(false);
    }
    return;
  }
  if (end.cloned) {
    if (!options_.quiet) Line(&task, "Cloned from the origin run.", out_);
  } else if (end.succeeded) {
    if (!options_.quiet) Line(&task, "Task finished successfully.", out_);
  } else {
    Failure(task, end);
  }
}

void ConsoleSink::RunFinished(const RunSummary& summary) {
  // Steps still open (the run failed or was interrupted) keep their last counts.
  while (!progress_.empty()) Retire(progress_.begin()->first);
  if (summary.status == "succeeded") {
    Line(nullptr,
         fmt::format("Done! Run {}/{} succeeded ({} tasks{}).", flow_, summary.run_id, summary.tasks_succeeded,
                     summary.tasks_cloned ? fmt::format(", {} cloned", summary.tasks_cloned) : ""),
         out_);
  } else {
    Line(nullptr, fmt::format("Run {}/{} failed: {}", flow_, summary.run_id, summary.failure), out_);
  }
}

void ConsoleSink::Retire(const std::string& step) {
  auto it = progress_.find(step);
  if (it == progress_.end()) return;
  std::string text = ProgressText(step, it->second, true);
  progress_.erase(it);
  ClearProgress();
  Write(out_, fmt::format("{} {}\n", Timestamp(), text));
  RedrawProgress(true);
}

// The progress block is the last lines on screen, one per collapsed step;
// "\033[nF" moves to the start of the line n lines up and "\033[J" erases
// from there to the end of the screen.
void ConsoleSink::ClearProgress() {
  if (drawn_lines_ > 0) Write(out_, fmt::format("\033[{}F\033[J", drawn_lines_));
  drawn_lines_ = 0;
}

std::string ConsoleSink::ProgressText(const std::string& step, const StepProgress& p, bool final) const {
  double elapsed = MonotonicSeconds() - p.first_start;
  int finished = p.done + p.failed;
  int total = p.Total();
  double rate = elapsed > 0 ? finished / elapsed : 0;
  std::string rate_text = rate >= 10 ? fmt::format("{:.0f} tasks/s", rate) : fmt::format("{:.1f} tasks/s", rate);
  std::string eta;
  if (finished >= total) {
    eta = fmt::format(", took {}", Duration(elapsed));
  } else if (final) {
    eta = fmt::format(", stopped after {}", Duration(elapsed));
  } else if (rate > 0) {
    eta = fmt::format(", ~{} left", Duration((total - finished) / rate));
  }
  return fmt::format("[{}/{}] {}/{} done, {} running, {} failed ({}{})", run_id_, step, p.done, total, p.running,
                     p.failed, rate_text, eta);
}

void ConsoleSink::RedrawProgress(bool force) {
  double now = MonotonicSeconds();
  if (!force && drawn_lines_ > 0 && now - last_draw_ < options_.redraw_interval) return;
  ClearProgress();
  for (const auto& [step, p] : progress_) Write(out_, ProgressText(step, p, false) + "\n");
  drawn_lines_ = static_cast<int>(progress_.size());
  last_draw_ = now;
  Flush(out_);
}

}  // namespace cairn
