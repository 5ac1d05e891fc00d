// Engine's private state: Engine::RunState, everything that lives for one
// Run call. Only engine/engine.cc (set-up, the loop, interruption),
// engine/engine_task_start.cc and engine/engine_task_end.cc include it.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/engine.h"
#include "engine/engine_log.h"
#include "engine/resume_reuse.h"
#include "engine/task_io.h"
#include "engine/task_log.h"
#include "sched/plan.h"
#include "store/disk_reserve.h"

namespace cairn {
namespace engine_internal {

inline constexpr size_t kFlushBatch = 512;        // records per transaction at most
inline constexpr double kFlushInterval = 0.25;    // seconds a finished task may wait to be committed

}  // namespace engine_internal

// Everything that lives for one Run call.
class Engine::RunState : public OutputSink {
 public:
  RunState(Engine& engine, const RunOptions& options)
      : e_(engine), options_(options), plan_(engine.graph_) {
    plan_.set_max_gang(options.max_workers);
  }

  Result<RunSummary> Run(int wake_fd, const std::function<bool()>& interrupted);
  void OnOutput(TaskKey key, int stream, std::string_view data) override;
  EngineLog& log() { return log_; }

 private:
  // What the engine knows of a task beyond the Plan's view.
  struct Task {
    std::vector<ArtifactRecord> artifacts;   // once succeeded
    std::vector<AttemptRecord> attempts;
    std::string outcome_json = "{}";
    std::string last_failure;
    double started_at = 0;
    std::unique_ptr<TaskLog> log;            // while an attempt runs
    std::string log_error;                   // the attempt's output could not be saved
    int64_t cloned_from = -1;                // resume: the origin task it was cloned from
  };

  Status Prepare();
  Status StartWork();
  Status StartTask(TaskKey key);
  bool TryClone(TaskKey key);
  Status PrepareReuse(const std::vector<TaskRecord>& origin);
  Status HandleExit(const TaskExit& exit);
  // @parallel gangs: a member's result is held until every member ended;
  // then all succeed, or all fail or retry together.
  struct Gang {
    std::map<TaskKey, std::pair<TaskResult, double>> succeeded;  // result, finished_at
    std::map<TaskKey, std::string> tails;                         // failed members' stderr
    TaskKey failed = 0;            // the first member that failed: it ends the attempt
    std::string reason;
  };
  void GangMemberEnded(TaskKey key, std::optional<TaskResult> result, double finished_at,
                       const std::string& tail);
  void SettleGang(TaskKey gang_id);
  void Succeed(TaskKey key, TaskResult result, double finished_at);
  void Fail(TaskKey key, const std::string& reason, const std::string& tail);
  std::string BuildPayload(TaskKey key);
  nlohmann::json FrameJson(const SplitFrame& frame);
  TaskEvent EventFor(TaskKey key) const;
  TaskRecord& Record(TaskKey key, const std::string& status);
  void RecordRunning(TaskKey key);
  Status Flush(bool force);
  // Ends the run after `cause` (an error from a write to the datastore):
  // for a full disk, kills the tasks, frees the reserve and records the run
  // as failed with the reason, then as many task rows as fit.
  Result<RunSummary> Abandon(const Status& cause);
  // Kills every running task and records each as killed with `reason`.
  void KillAndRecord(const std::string& reason);
  Status Interrupt();
  Task& task(TaskKey key) { return tasks_[key]; }

  Engine& e_;
  const RunOptions& options_;
  Plan plan_;
  std::unique_ptr<DiskReserve> reserve_;
  int64_t run_id_ = 0;
  std::vector<ArtifactRecord> params_;
  std::unordered_map<TaskKey, Task> tasks_;
  std::multimap<double, TaskKey> retries_;   // monotonic due time -> task
  std::vector<TaskRecord> pending_;
  // Tasks whose `running` row is in pending_ (by index), not yet committed:
  // when such a task finishes, its final row takes the running row's place.
  std::unordered_map<TaskKey, size_t> running_rows_;
  double last_flush_ = 0;
  RunSummary summary_;
  // Resume.
  std::unordered_map<std::string, TaskRecord> origin_;  // clone key -> succeeded task
  std::vector<bool> rerun_;                               // by StepId
  std::unique_ptr<ResumeReuse> reuse_;                    // which re-run tasks may still clone
  // Small blobs of this run (and its origin), by digest, for payloads.
  std::unordered_map<std::string, std::string> blobs_;
  nlohmann::json flow_payload_;                           // parsed once
  std::map<TaskKey, Gang> gangs_;                         // by split task, while one runs
  EngineLog log_;
};

}  // namespace cairn
