// EngineLog: a diagnostic log per run, root/logs/<run_id>/engine.log, for
// post-mortems: what the engine did (run start and end, task starts, exits and
// their reasons, retries, clones, commit batches, interrupts, errors), written
// through spdlog. The level comes from $CAIRN_LOG_LEVEL (default info).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/event_sink.h"
#include "engine/run_options.h"
#include "exec/launcher.h"
#include "util/result.h"

namespace spdlog {
class logger;
}

namespace cairn {

// Bounded in size: the file rotates at kEngineLogFileBytes into engine.1.log,
// engine.2.log, ..., keeping kEngineLogBackups old files.
inline constexpr size_t kEngineLogFileBytes = 8 << 20;
inline constexpr size_t kEngineLogBackups = 2;

// Writes through stdio's buffer, so a line costs no system call; the buffer is
// flushed after every commit of task records (so the log is never behind the
// database by more than the console is), on every warning or error, and when
// the run ends. Single-threaded, like the engine. A log that was never opened
// (or could not be) drops everything: the log must never stop a run.
class EngineLog {
 public:
  EngineLog();
  ~EngineLog();
  EngineLog(const EngineLog&) = delete;
  EngineLog& operator=(const EngineLog&) = delete;

  // "trace", "debug", "info", "warning"/"warn", "error", "off"; "" is info.
  static Status CheckLevel(std::string_view level);
  // The level named by $CAIRN_LOG_LEVEL; kInvalidArgument names the choices.
  static Status CheckEnvironment();
  // root/logs/<run_id>/engine.log.
  static std::string PathFor(const std::string& root, int64_t run_id);

  // Opens the run's log at $CAIRN_LOG_LEVEL. On failure the log stays closed
  // and the returned status says why (the engine goes on without it).
  Status Open(const std::string& root, int64_t run_id);

  void RunStarted(const RunOptions& options, int64_t run_id, const std::string& flow);
  // What Datastore::MarkCrashedRuns did (its failure does not stop a run).
  void MarkedCrashed(const Result<std::vector<int64_t>>& runs);
  void TaskStarted(const TaskEvent& task);
  void TaskExited(const TaskEvent& task, const TaskExit& exit, std::string_view status,
                  std::string_view reason);
  void TaskRetry(const TaskEvent& task, double delay_s);
  void TaskCloned(const TaskEvent& task, std::string_view origin);
  void Committed(size_t records, double seconds, const Status& status);
  void Interrupted(int running);
  // A line about the whole run (what resume reused and why, a sweep).
  void Note(std::string_view line);
  void RunFinished(const RunSummary& summary);
  void Error(std::string_view what, const Status& status);
  void Flush();

 private:
  std::shared_ptr<spdlog::logger> logger_;
};

}  // namespace cairn
