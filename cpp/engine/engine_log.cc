#include "engine/engine_log.h"

#include <unistd.h>

#include <cstdlib>
#include <exception>

#include <fmt/format.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/rotating_file_sink.h>

#include "util/fs.h"

namespace cairn {
namespace {

constexpr std::pair<std::string_view, spdlog::level::level_enum> kLevels[] = {
    {"trace", spdlog::level::trace}, {"debug", spdlog::level::debug},
    {"info", spdlog::level::info},   {"warning", spdlog::level::warn},
    {"warn", spdlog::level::warn},   {"error", spdlog::level::err},
    {"off", spdlog::level::off},
};

Result<spdlog::level::level_enum> ParseLevel(std::string_view text) {
  if (text.empty()) return spdlog::level::info;
  for (const auto& [name, level] : kLevels) {
    if (name == text) return level;
  }
  return Status::InvalidArgument(fmt::format(
      "CAIRN_LOG_LEVEL is '{}'; expected one of trace, debug, info, warning, error, off", text));
}

std::string_view EnvLevel() {
  const char* env = std::getenv("CAIRN_LOG_LEVEL");
  return env ? env : "";
}

std::string Name(const TaskEvent& t) {
  std::string name = fmt::format("{}/{}/{}", t.run_id, t.step, t.task_id);
  if (t.attempt > 0) name += fmt::format(" (attempt {})", t.attempt);
  if (t.foreach_width > 0) name += fmt::format(" [split {} of {}]", t.foreach_index + 1, t.foreach_width);
  return name;
}

const char* KindName(ExitKind kind) {
  switch (kind) {
    case ExitKind::kExited: return "exited";
    case ExitKind::kSignaled: return "signaled";
    case ExitKind::kTimedOut: return "timed out";
    case ExitKind::kLost: return "lost";
  }
  return "?";
}

}  // namespace

EngineLog::EngineLog() = default;

EngineLog::~EngineLog() { Flush(); }

Status EngineLog::CheckLevel(std::string_view level) { return ParseLevel(level).status(); }

Status EngineLog::CheckEnvironment() { return CheckLevel(EnvLevel()); }

std::string EngineLog::PathFor(const std::string& root, int64_t run_id) {
  return fmt::format("{}/logs/{}/engine.log", root, run_id);
}

Status EngineLog::Open(const std::string& root, int64_t run_id) {
  CAIRN_ASSIGN_OR_RETURN(spdlog::level::level_enum level, ParseLevel(EnvLevel()));
  if (level == spdlog::level::off) return Status::OK();
  CAIRN_RETURN_IF_ERROR(MakeDirs(fmt::format("{}/logs/{}", root, run_id)));
  try {
    // Not registered with spdlog's global registry: each run has its own.
    auto sink = std::make_shared<spdlog::sinks::rotating_file_sink_st>(
        PathFor(root, run_id), kEngineLogFileBytes, kEngineLogBackups);
    logger_ = std::make_shared<spdlog::logger>("engine", std::move(sink));
    logger_->set_pattern("%Y-%m-%d %H:%M:%S.%e %-5l %v");
    logger_->set_level(level);
    logger_->flush_on(spdlog::level::warn);
    // A write that fails (a full disk) loses the line, quietly: the console
    // and the database say what matters, and spdlog's default handler would
    // print to stderr in the middle of the run's output.
    logger_->set_error_handler([](const std::string&) {});
  } catch (const std::exception& e) {
    logger_.reset();
    return Status::IOError(fmt::format("cannot open the engine log {}: {}", PathFor(root, run_id), e.what()));
  }
  return Status::OK();
}

void EngineLog::RunStarted(const RunOptions& o, int64_t run_id, const std::string& flow) {
  if (!logger_) return;
  logger_->info("run {}/{} started: engine pid {}, user '{}', max_workers {}, origin run {}{}", flow, run_id,
                ::getpid(), o.user, o.max_workers, o.origin_run_id,
                o.resume_steps.empty() ? "" : fmt::format(", resume from {}", fmt::join(o.resume_steps, ",")));
  logger_->debug("run {} parameters: {}", run_id, o.params_json);
}

void EngineLog::MarkedCrashed(const Result<std::vector<int64_t>>& runs) {
  if (!logger_) return;
  if (!runs.ok()) {
    logger_->warn("could not mark crashed runs: {}", runs.status().ToString());
  } else if (!runs.value().empty()) {
    logger_->info("marked run(s) {} crashed: their engines are gone", fmt::join(runs.value(), ", "));
  }
}

void EngineLog::TaskStarted(const TaskEvent& t) {
  if (logger_) logger_->info("task {} started", Name(t));
}

void EngineLog::TaskExited(const TaskEvent& t, const TaskExit& exit, std::string_view status,
                           std::string_view reason) {
  if (!logger_) return;
  double took = exit.finished_at > exit.started_at && exit.started_at > 0 ? exit.finished_at - exit.started_at : 0;
  auto level = status == "succeeded" ? spdlog::level::info : spdlog::level::warn;
  logger_->log(level, "task {} {}: {} (exit code {}, signal {}, {:.3f} s){}{}", Name(t), status, KindName(exit.kind),
               exit.exit_code, exit.signal, took, reason.empty() ? "" : ": ", reason);
}

void EngineLog::TaskRetry(const TaskEvent& t, double delay_s) {
  if (logger_) logger_->info("task {} will be retried in {:.1f} s", Name(t), delay_s);
}

void EngineLog::TaskCloned(const TaskEvent& t, std::string_view origin) {
  if (logger_) logger_->info("task {} cloned from {}", Name(t), origin);
}

void EngineLog::Committed(size_t records, double seconds, const Status& status) {
  if (!logger_) return;
  if (status.ok()) {
    logger_->info("committed {} task record(s) in {:.1f} ms", records, seconds * 1000);
    logger_->flush();
  } else {
    logger_->error("commit of {} task record(s) failed after {:.1f} ms: {}", records, seconds * 1000,
                   status.ToString());
  }
}

void EngineLog::Interrupted(int running) {
  if (logger_) logger_->warn("interrupted: killing {} running task(s)", running);
}

void EngineLog::Note(std::string_view line) {
  if (logger_) logger_->info("{}", line);
}

void EngineLog::RunFinished(const RunSummary& s) {
  if (!logger_) return;
  logger_->log(s.status == "succeeded" ? spdlog::level::info : spdlog::level::warn,
               "run {} {}: {} task(s) succeeded, {} failed, {} cloned{}{}", s.run_id, s.status, s.tasks_succeeded,
               s.tasks_failed, s.tasks_cloned, s.failure.empty() ? "" : ": ", s.failure);
  logger_->flush();
}

void EngineLog::Error(std::string_view what, const Status& status) {
  if (logger_) logger_->error("{}: {}", what, status.ToString());
}

void EngineLog::Flush() {
  if (logger_) logger_->flush();
}

}  // namespace cairn
