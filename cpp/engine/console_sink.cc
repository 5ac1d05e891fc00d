#include "engine/console_sink.h"

#include <ctime>
#include <string>
#include <vector>

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
  return fmt::format("{}.{:03d}", buf, static_cast<int>((now - static_cast<double>(secs)) * 1000));
}

std::string Prefix(const TaskEvent& t) {
  if (t.attempt > 0) return fmt::format("[{}/{}/{} (attempt {})]", t.run_id, t.step, t.task_id, t.attempt);
  return fmt::format("[{}/{}/{}]", t.run_id, t.step, t.task_id);
}

}  // namespace

ConsoleSink::ConsoleSink(std::FILE* out, std::FILE* err, ConsoleOptions options)
    : out_(out), err_(err), options_(options) {}

bool ConsoleSink::Collapsed(const TaskEvent& task) const {
  return options_.live_progress && task.foreach_width >= options_.progress_min_width;
}

void ConsoleSink::Line(const TaskEvent* task, const std::string& text) { Line(task, text, out_); }

void ConsoleSink::Line(const TaskEvent* task, const std::string& text, std::FILE* to) {
  ClearProgress();
  if (to != out_) std::fflush(out_);
  if (task) {
    fmt::print(to, "{} {} {}\n", Timestamp(), Prefix(*task), text);
  } else {
    fmt::print(to, "{} {}\n", Timestamp(), text);
  }
  if (to != out_) std::fflush(to);
  if (!progress_.empty()) RedrawProgress(true);
  std::fflush(out_);
}

void ConsoleSink::RunStarted(int64_t run_id, const std::string& flow, int64_t origin_run_id) {
  flow_ = flow;
  run_id_ = run_id;
  if (origin_run_id) {
    Line(nullptr, fmt::format("Workflow {} resuming run {} (run-id {}):", flow, origin_run_id, run_id));
  } else {
    Line(nullptr, fmt::format("Workflow {} starting (run-id {}):", flow, run_id));
  }
}

void ConsoleSink::TaskStarted(const TaskEvent& task) {
  if (Collapsed(task)) {
    StepProgress& p = progress_[task.step];
    if (p.width == 0) p.first_start = MonotonicSeconds();
    p.width = task.foreach_width;
    if (task.attempt == 0) p.running++;
    RedrawProgress(false);
    return;
  }
  if (!options_.quiet) Line(&task, task.attempt ? "Task is retrying." : "Task is starting.");
}

void ConsoleSink::TaskOutput(const TaskEvent& task, int stream, std::string_view line) {
  Line(&task, std::string(line), stream == 2 ? err_ : out_);
}

void ConsoleSink::TaskFinished(const TaskEvent& task, const TaskEnd& end) {
  if (Collapsed(task) && !end.cloned) {
    StepProgress& p = progress_[task.step];
    if (!end.will_retry) {
      p.running--;
      (end.succeeded ? p.done : p.failed)++;
    }
    if (!end.succeeded) {
      if (!end.stderr_tail.empty()) Line(&task, "Task failed; the end of its stderr:\n" + end.stderr_tail);
      Line(&task, fmt::format("Task failed: {}{}", end.reason, end.will_retry ? " (will retry)" : ""));
    }
    if (p.done + p.failed >= p.width) {
      std::string text = ProgressText(task.step, p);
      progress_.erase(task.step);
      ClearProgress();
      fmt::print(out_, "{} {}\n", Timestamp(), text);
      RedrawProgress(true);
    } else {
      RedrawProgress(false);
    }
    return;
  }
  if (end.cloned) {
    if (!options_.quiet) Line(&task, "Cloned from the origin run.");
  } else if (end.succeeded) {
    if (!options_.quiet) Line(&task, "Task finished successfully.");
  } else {
    if (!end.stderr_tail.empty()) Line(&task, "Task failed; the end of its stderr:\n" + end.stderr_tail);
    Line(&task, fmt::format("Task failed: {}{}", end.reason, end.will_retry ? " (will retry)" : ""));
  }
}

void ConsoleSink::RunFinished(const RunSummary& summary) {
  ClearProgress();
  progress_.clear();
  if (summary.status == "succeeded") {
    Line(nullptr, fmt::format("Done! Run {}/{} succeeded ({} tasks{}).", flow_, summary.run_id,
                              summary.tasks_succeeded,
                              summary.tasks_cloned ? fmt::format(", {} cloned", summary.tasks_cloned) : ""));
  } else {
    Line(nullptr, fmt::format("Run {}/{} failed: {}", flow_, summary.run_id, summary.failure));
  }
}

// The progress block is the last lines on screen, one per collapsed step;
// ClearProgress erases it so that ordinary lines print above it.
void ConsoleSink::ClearProgress() {
  if (drawn_lines_ > 0) fmt::print(out_, "\033[{}F\033[J", drawn_lines_);
  drawn_lines_ = 0;
}

std::string ConsoleSink::ProgressText(const std::string& step, const StepProgress& p) const {
  double elapsed = MonotonicSeconds() - p.first_start;
  int finished = p.done + p.failed;
  double rate = elapsed > 0 ? finished / elapsed : 0;
  std::string eta =
      rate > 0 && finished < p.width ? fmt::format("  ~{:.1f}s left", (p.width - finished) / rate) : "";
  return fmt::format("[{}/{}] {}/{} done, {} running, {} failed  {:.0f} tasks/s{}", run_id_, step, p.done,
                     p.width, p.running, p.failed, rate, eta);
}

void ConsoleSink::RedrawProgress(bool force) {
  double now = MonotonicSeconds();
  if (!force && drawn_lines_ > 0 && now - last_draw_ < 0.1) return;
  ClearProgress();
  for (const auto& [step, p] : progress_) fmt::print(out_, "{}\n", ProgressText(step, p));
  drawn_lines_ = static_cast<int>(progress_.size());
  last_draw_ = now;
  std::fflush(out_);
}

}  // namespace cairn
