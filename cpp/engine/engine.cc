#include "engine/engine.h"

#include <algorithm>
#include <map>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "engine/engine_log.h"
#include "engine/resume_reuse.h"
#include "engine/task_io.h"
#include "engine/task_log.h"
#include "sched/plan.h"
#include "store/disk_reserve.h"
#include "store/gc.h"
#include "util/fs.h"
#include "util/time.h"

namespace cairn {
namespace {

using nlohmann::json;

constexpr size_t kFlushBatch = 512;        // records per transaction at most
constexpr double kFlushInterval = 0.25;    // seconds a finished task may wait to be committed
constexpr double kInterruptGrace = 10.0;   // seconds to collect killed tasks

}  // namespace

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

Engine::Engine(const Graph& graph, Datastore& store, Launcher& launcher, EventSink& sink)
    : graph_(graph), store_(store), launcher_(launcher), sink_(sink) {}
Engine::~Engine() = default;

Result<RunSummary> Engine::Run(const RunOptions& options, int wake_fd, std::function<bool()> interrupted) {
  run_id_ = 0;
  RunState state(*this, options);
  Result<RunSummary> result = state.Run(wake_fd, interrupted);
  if (!result.ok()) state.log().Error("the run stopped", result.status());
  return result;
}

Status Engine::RunState::Prepare() {
  CAIRN_RETURN_IF_ERROR(EngineLog::CheckEnvironment());
  CAIRN_ASSIGN_OR_RETURN(params_, ArtifactsFromJson(options_.param_artifacts_json));
  Result<std::unique_ptr<DiskReserve>> reserve = DiskReserve::Create(options_.root + "/reserve");
  if (!reserve.ok()) {
    if (reserve.status().code() != Status::Code::kNoSpace) return reserve.status();
    return Status::NoSpace("the datastore's disk is full (" + reserve.status().message() +
                           "): free space, then run again");
  }
  reserve_ = std::move(reserve).value();
  flow_payload_ = json::parse(options_.flow_payload_json, nullptr, /*allow_exceptions=*/false);
  if (flow_payload_.is_discarded()) return Status::InvalidArgument("flow_payload_json is not JSON");
  NewRun run;
  run.flow = e_.graph_.flow_name();
  run.user = options_.user;
  run.origin_run_id = options_.origin_run_id;
  run.params_json = options_.params_json;
  run.graph_json = options_.graph_json;
  run.tags = options_.tags;
  run.system_tags = options_.system_tags;
  // The parameters are a pseudo-task (task 0 of step _parameters), as in
  // Metaflow, committed with the run itself: a run is never without them,
  // whenever the engine dies.
  TaskRecord params;
  params.step = "_parameters";
  params.task_id = 0;
  params.status = "succeeded";
  params.clone_key = "_parameters[]#0";
  params.started_at = params.finished_at = WallSeconds();
  params.artifacts = params_;
  CAIRN_ASSIGN_OR_RETURN(RunRecord record, e_.store_.CreateRun(run, {std::move(params)}));
  run_id_ = record.run_id;
  e_.run_id_ = run_id_;
  summary_.run_id = run_id_;
  (void)log_.Open(options_.root, run_id_);  // a run goes on without its log
  log_.MarkedCrashed(e_.store_.MarkCrashedRuns());
  if (!options_.run_id_file.empty()) {
    Status written = WriteFileAtomic(options_.run_id_file, std::to_string(run_id_));
    if (!written.ok()) {
      std::string failure = "cannot write --run-id-file " + options_.run_id_file + ": " + written.message();
      (void)e_.store_.FinishRun(run_id_, "failed", failure);  // never left looking alive
      return Status::IOError(failure);
    }
  }
  // Temp files whose writer died (a killed task or engine); failing to sweep
  // only leaves them for `cairn gc`.
  Result<Reclaimed> swept = SweepTempFiles(options_.root, GcOptions{});
  if (swept.ok() && swept->files > 0) {
    log_.Note(fmt::format("removed {} stale temp file(s), {} bytes", swept->files, swept->bytes));
  }

  rerun_.assign(e_.graph_.steps().size(), options_.origin_run_id == 0);
  if (options_.origin_run_id) {
    CAIRN_ASSIGN_OR_RETURN(std::vector<TaskRecord> origin, e_.store_.Tasks(options_.origin_run_id));
    CAIRN_ASSIGN_OR_RETURN(auto origin_blobs, e_.store_.BlobsOfRun(options_.origin_run_id));
    for (auto& [digest, data] : origin_blobs) blobs_.emplace(std::move(digest), std::move(data));
    std::vector<StepId> from;
    for (const auto& name : options_.resume_steps) {
      StepId id = e_.graph_.Find(name);
      if (id == kNoStep) return Status::InvalidArgument(fmt::format("resume: no step named '{}'", name));
      from.push_back(id);
    }
    CAIRN_RETURN_IF_ERROR(PrepareReuse(origin));
    for (auto& t : origin) {
      if (t.status == "succeeded") {
        std::string key = t.clone_key;
        origin_.emplace(std::move(key), std::move(t));
      } else if (options_.resume_steps.empty() && t.status != "succeeded") {  // failed, or left running
        StepId id = e_.graph_.Find(t.step);
        if (id != kNoStep) from.push_back(id);
      }
    }
    for (StepId id : from) {
      std::vector<bool> reach = e_.graph_.ReachableFrom(id);
      for (size_t i = 0; i < reach.size(); ++i) rerun_[i] = rerun_[i] || reach[i];
    }
  }
  return Status::OK();
}

Status Engine::RunState::PrepareReuse(const std::vector<TaskRecord>& origin) {
  CAIRN_ASSIGN_OR_RETURN(RunRecord origin_run, e_.store_.GetRun(e_.graph_.flow_name(), options_.origin_run_id));
  auto pairs = [](const std::vector<ArtifactRecord>& artifacts) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const ArtifactRecord& a : artifacts) out.emplace_back(a.name, a.digest);
    std::sort(out.begin(), out.end());
    return out;
  };
  bool params_same = false;
  for (const TaskRecord& t : origin) {
    if (t.step == "_parameters") params_same = pairs(t.artifacts) == pairs(params_);
  }
  bool enabled = options_.resume_steps.empty() && params_same;
  std::string why = options_.resume_steps.empty()
                        ? fmt::format("its parameters differ from run {}'s", options_.origin_run_id)
                        : "resume was asked to re-run it";
  reuse_ = std::make_unique<ResumeReuse>(e_.graph_, options_.origin_run_id, origin_run.graph_json, enabled, why);
  return Status::OK();
}

Result<RunSummary> Engine::RunState::Run(int wake_fd, const std::function<bool()>& interrupted) {
  CAIRN_RETURN_IF_ERROR(Prepare());
  log_.RunStarted(options_, run_id_, e_.graph_.flow_name());
  e_.sink_.RunStarted(run_id_, e_.graph_.flow_name(), options_.origin_run_id);
  if (reuse_) {
    std::vector<bool> had_finished(e_.graph_.steps().size(), false);
    for (const auto& [key, t] : origin_) {
      StepId id = e_.graph_.Find(t.step);
      if (id != kNoStep) had_finished[static_cast<size_t>(id)] = true;
    }
    for (const std::string& note : reuse_->StartNotes(rerun_, had_finished)) {
      e_.sink_.Note(note);
      log_.Note(note);
    }
  }
  plan_.Start();
  last_flush_ = MonotonicSeconds();

  while (true) {
    CAIRN_RETURN_IF_ERROR(StartWork());
    if (plan_.Done() && retries_.empty() && e_.launcher_.running() == 0) break;
    if (Status st = Flush(false); !st.ok()) return Abandon(st);

    int timeout_ms = static_cast<int>(kFlushInterval * 1000);
    if (!retries_.empty()) {
      double wait = retries_.begin()->first - MonotonicSeconds();
      timeout_ms = std::clamp(static_cast<int>(wait * 1000) + 1, 0, timeout_ms);
    }
    CAIRN_ASSIGN_OR_RETURN(std::vector<TaskExit> exits, e_.launcher_.Wait(timeout_ms, wake_fd, this));
    for (const TaskExit& exit : exits) CAIRN_RETURN_IF_ERROR(HandleExit(exit));
    if (interrupted && interrupted()) return Interrupt();
    double now = MonotonicSeconds();
    while (!retries_.empty() && retries_.begin()->first <= now) {
      plan_.Requeue(retries_.begin()->second);
      retries_.erase(retries_.begin());
    }
  }

  const PlannedTask* end = nullptr;
  for (TaskKey k = static_cast<TaskKey>(plan_.size()); k >= 1; --k) {
    const PlannedTask& t = plan_.task(k);
    if (t.step == e_.graph_.end() && t.state == TaskState::kSucceeded) end = &t;
    if (end) break;
  }
  summary_.status = end && !plan_.failed() ? "succeeded" : "failed";
  if (summary_.status == "failed" && summary_.failure.empty()) summary_.failure = "the run stopped before its end step";
  Status st = Flush(true);
  if (st.ok()) st = e_.store_.FinishRun(run_id_, summary_.status, summary_.failure);
  if (!st.ok()) return Abandon(st);
  if (reuse_) {
    for (const std::string& note : reuse_->EndNotes()) {
      e_.sink_.Note(note);
      log_.Note(note);
    }
  }
  log_.RunFinished(summary_);
  e_.sink_.RunFinished(summary_);
  return summary_;
}

Result<RunSummary> Engine::RunState::Abandon(const Status& cause) {
  if (cause.code() != Status::Code::kNoSpace) return cause;
  KillAndRecord("the run stopped: the datastore's disk is full");
  summary_.status = "failed";
  summary_.failure = "the datastore's disk is full (" + cause.message() + "); free space, then resume";
  // The reserve's blocks make room for the run's end first, the smallest
  // write and the one that matters most, then for the task rows.
  reserve_->Release();
  Status finished = e_.store_.FinishRun(run_id_, summary_.status, summary_.failure);
  Status recorded = e_.store_.RecordTasks(pending_);
  if (!recorded.ok()) {  // the batch does not fit: each task that does
    for (const TaskRecord& t : pending_) (void)e_.store_.RecordTasks({t});
  }
  pending_.clear();
  log_.RunFinished(summary_);
  e_.sink_.RunFinished(summary_);
  if (!finished.ok()) return finished;
  return summary_;
}

Status Engine::RunState::StartWork() {
  while (e_.launcher_.running() < options_.max_workers) {
    // A @parallel gang starts whole: wait until every member is ready and
    // there is room for all of them.
    int gang = plan_.ReadyGang();
    if (gang < 0 || gang > options_.max_workers - e_.launcher_.running()) break;
    for (int i = 0; i < std::max(gang, 1); ++i) {
      std::optional<TaskKey> key = plan_.FindWork();
      if (!key) return Status::OK();
      if (TryClone(*key)) continue;
      CAIRN_RETURN_IF_ERROR(StartTask(*key));
    }
  }
  return Status::OK();
}

TaskEvent Engine::RunState::EventFor(TaskKey key) const {
  const PlannedTask& t = plan_.task(key);
  TaskEvent ev;
  ev.run_id = run_id_;
  ev.step = e_.graph_.step(t.step).name;
  ev.task_id = key;
  ev.attempt = t.attempt;
  for (auto it = t.stack.rbegin(); it != t.stack.rend(); ++it) {
    if (it->foreach) {
      ev.foreach_index = it->index;
      ev.foreach_width = it->width;
      break;
    }
  }
  return ev;
}

json Engine::RunState::FrameJson(const SplitFrame& f) {
  json frame = {{"step", e_.graph_.step(f.split_step).name},
                {"task_id", f.split_task},
                {"index", f.index},
                {"width", f.width},
                {"foreach", f.foreach}};
  if (f.foreach) {
    const std::string& var = e_.graph_.step(f.split_step).foreach_var;
    frame["var"] = var;
    for (const auto& a : task(f.split_task).artifacts) {
      if (a.name == var) frame["artifact"] = json::array({a.name, a.digest, a.size, a.type, a.encoding});
    }
  }
  return frame;
}

std::string Engine::RunState::BuildPayload(TaskKey key) {
  const PlannedTask& t = plan_.task(key);
  const Step& step = e_.graph_.step(t.step);
  json p;
  p["flow"] = flow_payload_;
  p["run_id"] = run_id_;
  p["step"] = step.name;
  p["task_id"] = key;
  p["attempt"] = t.attempt;
  p["fallback"] = t.fallback;
  if (t.fallback) {
    // What the @catch fallback attempt stores in self.<var>.
    p["failure"] = task(key).last_failure;
    const auto& attempts = task(key).attempts;
    p["failure_status"] = attempts.empty() ? "failed" : attempts.back().status;
  }
  p["origin_run_id"] = options_.origin_run_id;
  p["max_num_splits"] = options_.max_num_splits;
  p["params"] = ArtifactsToJson(params_);
  json inputs = json::array();
  for (TaskKey parent : t.parents) {
    const PlannedTask& pt = plan_.task(parent);
    json input = {{"step", e_.graph_.step(pt.step).name},
                  {"task_id", parent},
                  {"artifacts", ArtifactsToJson(task(parent).artifacts)}};
    // A join's inputs are one split deeper: their innermost frame says which
    // branch or foreach item each one was.
    if (pt.stack.size() > t.stack.size()) input["frame"] = FrameJson(pt.stack.back());
    inputs.push_back(std::move(input));
  }
  p["inputs"] = std::move(inputs);
  json stack = json::array();
  for (const SplitFrame& f : t.stack) stack.push_back(FrameJson(f));
  p["stack"] = std::move(stack);
  // Small blobs travel with the payload, so the task never looks for them.
  std::vector<std::pair<const std::string*, const std::string*>> blobs;
  std::unordered_set<std::string_view> seen;
  auto add = [&](const std::vector<ArtifactRecord>& artifacts) {
    for (const ArtifactRecord& a : artifacts) {
      auto it = blobs_.find(a.digest);
      if (it != blobs_.end() && seen.insert(it->first).second) blobs.emplace_back(&it->first, &it->second);
    }
  };
  for (TaskKey parent : t.parents) add(task(parent).artifacts);
  for (const SplitFrame& f : t.stack) {
    if (f.foreach) add(task(f.split_task).artifacts);
  }
  return JoinBlobs(p, blobs);
}

Status Engine::RunState::StartTask(TaskKey key) {
  const PlannedTask& t = plan_.task(key);
  const Step& step = e_.graph_.step(t.step);
  Task& rt = task(key);
  if (t.attempt == 0) rt.started_at = WallSeconds();
  TaskEvent ev = EventFor(key);
  rt.log = std::make_unique<TaskLog>(
      TaskLog::BasePath(options_.root, run_id_, step.name, key, t.attempt),
      [this, ev](int stream, std::string_view line) { e_.sink_.TaskOutput(ev, stream, line); });

  TaskCommand cmd;
  cmd.key = key;
  cmd.argv = options_.task_argv;
  cmd.payload = BuildPayload(key);
  for (const SplitFrame& f : t.stack) {
    if (!f.foreach) continue;
    const std::string& var = e_.graph_.step(f.split_step).foreach_var;
    for (const ArtifactRecord& a : task(f.split_task).artifacts) {
      if (a.name == var) cmd.preload.push_back(a.digest);
    }
  }
  cmd.timeout_s = step.options.timeout_s;
  cmd.backend = step.options.backend;
  AttemptRecord attempt;
  attempt.attempt = t.attempt;
  attempt.started_at = WallSeconds();
  rt.attempts.push_back(attempt);
  RecordRunning(key);
  e_.sink_.TaskStarted(ev);
  log_.TaskStarted(ev);
  Status st = e_.launcher_.Start(cmd);
  if (!st.ok()) {
    // Could not even start it: the same as a task that failed at once.
    TaskExit exit;
    exit.key = key;
    exit.kind = ExitKind::kLost;
    exit.started_at = exit.finished_at = WallSeconds();
    rt.last_failure = "could not start the task: " + st.message();
    return HandleExit(exit);
  }
  return Status::OK();
}

bool Engine::RunState::TryClone(TaskKey key) {
  if (origin_.empty()) return false;
  const PlannedTask& t = plan_.task(key);
  if (t.attempt > 0 || t.fallback) return false;
  auto it = origin_.find(plan_.CloneKey(key));
  bool rerun = rerun_[static_cast<size_t>(t.step)];
  bool clone = it != origin_.end();
  if (clone && rerun) {
    // A re-run step's task is still cloned when its code and inputs are the
    // origin twin's (ResumeReuse).
    std::vector<int64_t> parents_origin;
    for (TaskKey parent : t.parents) parents_origin.push_back(task(parent).cloned_from);
    clone = reuse_->MayClone(t.step, parents_origin, it->second);
  }
  reuse_->Count(t.step, rerun, clone, EventFor(key).foreach_width > 0);
  if (!clone) return false;
  const TaskRecord& from = it->second;
  Task& rt = task(key);
  rt.cloned_from = from.task_id;
  rt.artifacts = from.artifacts;
  rt.outcome_json = from.result_json;
  rt.started_at = from.started_at;
  AttemptRecord attempt;
  attempt.status = "succeeded";
  attempt.exit_code = 0;
  attempt.reason = "cloned";
  attempt.started_at = from.started_at;
  attempt.finished_at = from.finished_at;
  rt.attempts.push_back(attempt);
  Status st = plan_.TaskSucceeded(key, OutcomeFromJson(from.result_json));
  if (!st.ok()) {
    Fail(key, st.message(), "");
    return true;
  }
  TaskRecord& rec = Record(key, "succeeded");
  rec.origin = from.origin.empty()
                   ? fmt::format("{}/{}/{}/{}", e_.graph_.flow_name(), from.run_id, from.step, from.task_id)
                   : from.origin;
  rec.started_at = from.started_at;
  rec.finished_at = from.finished_at;
  summary_.tasks_cloned++;
  log_.TaskCloned(EventFor(key), rec.origin);
  TaskEnd end;
  end.succeeded = end.cloned = true;
  e_.sink_.TaskFinished(EventFor(key), end);
  return true;
}

void Engine::RunState::OnOutput(TaskKey key, int stream, std::string_view data) {
  auto it = tasks_.find(key);
  if (it == tasks_.end() || !it->second.log) return;
  Status st = it->second.log->Append(stream, data);
  if (!st.ok() && it->second.log_error.empty()) it->second.log_error = st.message();
}

Status Engine::RunState::HandleExit(const TaskExit& exit) {
  TaskKey key = exit.key;
  Task& rt = task(key);
  std::string tail;
  if (rt.log) {
    Status closed = rt.log->Close();
    if (!closed.ok() && rt.log_error.empty()) rt.log_error = closed.message();
    tail = rt.log->StderrTail();
    rt.log.reset();
  }
  AttemptRecord& attempt = rt.attempts.back();
  attempt.finished_at = exit.finished_at ? exit.finished_at : WallSeconds();
  attempt.exit_code = exit.exit_code;
  attempt.signal = exit.signal;

  std::optional<TaskResult> result;
  std::string reason;
  if (!exit.result.empty()) {
    Result<TaskResult> parsed = ParseTaskResult(exit.result);
    if (parsed.ok()) {
      result = std::move(parsed).value();
    } else {
      reason = parsed.status().message();
    }
  }
  bool ok = exit.kind == ExitKind::kExited && exit.exit_code == 0 && reason.empty() &&
            (!options_.require_result || (result && result->exception.empty()));
  // Output that could not be kept fails the attempt: its record would
  // claim logs it does not have.
  if (ok && !rt.log_error.empty()) {
    ok = false;
    reason = "the task's output could not be saved: " + rt.log_error;
  }
  rt.log_error.clear();
  if (ok) {
    attempt.status = "succeeded";
    attempt.reason = result && !result->caught.empty() ? "@catch caught: " + result->caught : "";
    log_.TaskExited(EventFor(key), exit, attempt.status, attempt.reason);
    if (plan_.task(key).gang != 0) {
      GangMemberEnded(key, result ? std::move(*result) : TaskResult{}, attempt.finished_at, "");
      return Status::OK();
    }
    Succeed(key, result ? std::move(*result) : TaskResult{}, attempt.finished_at);
    return Status::OK();
  }

  if (result && !result->exception.empty()) {
    reason = result->exception;
    rt.outcome_json = result->outcome_json;
  } else if (reason.empty()) {
    reason = DescribeExit(exit, e_.graph_.step(plan_.task(key).step).options.timeout_s, rt.last_failure);
  }
  attempt.status = AttemptStatus(exit.kind);
  attempt.reason = reason;
  rt.last_failure = reason;
  TaskEvent ev = EventFor(key);
  log_.TaskExited(ev, exit, attempt.status, reason);
  if (plan_.task(key).gang != 0) {
    GangMemberEnded(key, std::nullopt, attempt.finished_at, tail);
    return Status::OK();
  }

  FailureAction action = plan_.TaskFailed(key);
  if (action == FailureAction::kFail) {
    Fail(key, reason, tail);
    return Status::OK();
  }
  TaskEnd end;
  end.will_retry = true;
  end.reason = reason;
  end.stderr_tail = tail;
  e_.sink_.TaskFinished(ev, end);
  double delay = action == FailureAction::kRetry ? e_.graph_.step(plan_.task(key).step).options.retry_delay_s : 0;
  retries_.emplace(MonotonicSeconds() + delay, key);
  log_.TaskRetry(ev, delay);
  RecordRunning(key);  // readers see the failed attempt while the retry waits
  return Status::OK();
}

void Engine::RunState::GangMemberEnded(TaskKey key, std::optional<TaskResult> result,
                                       double finished_at, const std::string& tail) {
  TaskKey gang_id = plan_.task(key).gang;
  Gang& gang = gangs_[gang_id];
  if (result) {
    gang.succeeded.emplace(key, std::make_pair(std::move(*result), finished_at));
  } else {
    gang.tails[key] = tail;
    if (gang.failed == 0) {
      // The first failure ends this attempt of the whole gang.
      gang.failed = key;
      gang.reason = task(key).last_failure;
      for (TaskKey member : plan_.GangMembers(gang_id)) {
        if (member != key) e_.launcher_.Kill(member);
      }
    } else {
      AttemptRecord& attempt = task(key).attempts.back();
      attempt.reason = fmt::format("its @parallel gang was stopped: task {} failed", gang.failed);
      task(key).last_failure = attempt.reason;
    }
  }
  if (gang.succeeded.size() + gang.tails.size() == plan_.GangMembers(gang_id).size()) SettleGang(gang_id);
}

void Engine::RunState::SettleGang(TaskKey gang_id) {
  Gang gang = std::move(gangs_[gang_id]);
  gangs_.erase(gang_id);
  const std::vector<TaskKey>& members = plan_.GangMembers(gang_id);
  if (gang.failed == 0) {
    for (TaskKey member : members) {
      auto& [result, finished_at] = gang.succeeded.at(member);
      Succeed(member, std::move(result), finished_at);
    }
    return;
  }
  // One failed: every member fails this attempt, and all retry (or fail) together.
  for (TaskKey member : members) {
    if (gang.succeeded.count(member)) {
      AttemptRecord& attempt = task(member).attempts.back();
      attempt.status = "failed";
      attempt.reason = fmt::format("its @parallel gang failed: task {}: {}", gang.failed, gang.reason);
      task(member).last_failure = attempt.reason;
    }
  }
  std::vector<TaskKey> again;
  for (TaskKey member : members) {
    TaskEvent ev = EventFor(member);
    FailureAction action = plan_.TaskFailed(member);
    const std::string& reason = task(member).last_failure;
    if (action == FailureAction::kFail) {
      Fail(member, reason, gang.tails[member]);
      continue;
    }
    TaskEnd end;
    end.will_retry = true;
    end.reason = reason;
    end.stderr_tail = gang.tails[member];
    e_.sink_.TaskFinished(ev, end);
    again.push_back(member);
  }
  // Requeued at once and in a row, so that the gang starts again whole
  // (a local runtime retries without waiting, as Metaflow's does).
  for (TaskKey member : again) plan_.Requeue(member);
}

void Engine::RunState::Succeed(TaskKey key, TaskResult result, double finished_at) {
  Task& rt = task(key);
  rt.artifacts = std::move(result.artifacts);
  rt.outcome_json = result.outcome_json.empty() ? "{}" : result.outcome_json;
  for (const auto& [digest, data] : result.blobs) blobs_.emplace(digest, data);
  Status st = plan_.TaskSucceeded(key, result.outcome);
  if (!st.ok()) {
    rt.attempts.back().status = "failed";
    rt.attempts.back().reason = st.message();
    Fail(key, st.message(), "");
    return;
  }
  summary_.tasks_succeeded++;
  TaskRecord& rec = Record(key, "succeeded");
  rec.finished_at = finished_at;
  rec.blobs = std::move(result.blobs);
  TaskEnd end;
  end.succeeded = true;
  e_.sink_.TaskFinished(EventFor(key), end);
}

void Engine::RunState::Fail(TaskKey key, const std::string& reason, const std::string& tail) {
  summary_.tasks_failed++;
  if (summary_.failure.empty()) {
    summary_.failure = fmt::format("step '{}' (task {}) failed: {}", e_.graph_.step(plan_.task(key).step).name,
                                   key, reason);
  }
  Record(key, "failed");
  TaskEnd end;
  end.reason = reason;
  end.stderr_tail = tail;
  e_.sink_.TaskFinished(EventFor(key), end);
}

TaskRecord& Engine::RunState::Record(TaskKey key, const std::string& status) {
  const PlannedTask& t = plan_.task(key);
  Task& rt = task(key);
  TaskRecord rec;
  rec.run_id = run_id_;
  rec.step = e_.graph_.step(t.step).name;
  rec.task_id = key;
  rec.status = status;
  rec.foreach_index = EventFor(key).foreach_index;
  rec.clone_key = plan_.CloneKey(key);
  rec.result_json = rt.outcome_json;
  rec.parents = t.parents;
  rec.started_at = rt.started_at;
  rec.finished_at = WallSeconds();
  rec.attempts = rt.attempts;
  rec.artifacts = rt.artifacts;
  auto running = running_rows_.find(key);
  if (running == running_rows_.end()) return pending_.emplace_back(std::move(rec));
  TaskRecord& slot = pending_[running->second];
  running_rows_.erase(running);
  slot = std::move(rec);
  return slot;
}

// A task's row while an attempt runs (or it waits to retry), committed with
// the next batch, so that a task can read itself through the client; a task
// that finishes before then never writes it.
void Engine::RunState::RecordRunning(TaskKey key) {
  auto running = running_rows_.find(key);
  TaskRecord& rec = running == running_rows_.end() ? Record(key, "running") : pending_[running->second];
  if (running != running_rows_.end()) rec.attempts = task(key).attempts;  // a retry before the flush
  running_rows_[key] = static_cast<size_t>(&rec - pending_.data());
  rec.finished_at = 0;
  if (rec.attempts.back().status.empty()) rec.attempts.back().status = "running";  // not yet over
}

Status Engine::RunState::Flush(bool force) {
  if (pending_.empty()) return Status::OK();
  double now = MonotonicSeconds();
  if (!force && pending_.size() < kFlushBatch && now - last_flush_ < kFlushInterval) return Status::OK();
  Status st = e_.store_.RecordTasks(pending_);
  log_.Committed(pending_.size(), MonotonicSeconds() - now, st);
  CAIRN_RETURN_IF_ERROR(st);
  pending_.clear();
  running_rows_.clear();
  last_flush_ = now;
  return Status::OK();
}

void Engine::RunState::KillAndRecord(const std::string& reason) {
  e_.launcher_.KillAll();
  double deadline = MonotonicSeconds() + kInterruptGrace;
  while (e_.launcher_.running() > 0 && MonotonicSeconds() < deadline) {
    auto exits = e_.launcher_.Wait(100, -1, this);
    if (!exits.ok()) break;
    for (const TaskExit& exit : exits.value()) {
      Task& rt = task(exit.key);
      if (rt.log) {
        (void)rt.log->Close();
        rt.log.reset();
      }
      AttemptRecord& a = rt.attempts.back();
      // Lost: its launcher could not follow it to its end (a hung sidecar killed).
      a.status = exit.kind == ExitKind::kLost ? "lost" : "killed";
      a.reason = reason;
      a.finished_at = WallSeconds();
      a.signal = exit.signal;
      log_.TaskExited(EventFor(exit.key), exit, a.status, a.reason);
      Record(exit.key, "failed");
    }
  }
}

Status Engine::RunState::Interrupt() {
  log_.Interrupted(e_.launcher_.running());
  KillAndRecord("the run was interrupted");
  summary_.status = "failed";
  summary_.failure = "the run was interrupted";
  Result<RunSummary> finished = [&]() -> Result<RunSummary> {
    Status st = Flush(true);
    if (st.ok()) st = e_.store_.FinishRun(run_id_, "failed", summary_.failure);
    if (!st.ok()) return Abandon(st);
    log_.RunFinished(summary_);
    e_.sink_.RunFinished(summary_);
    return summary_;
  }();
  CAIRN_RETURN_IF_ERROR(finished.status());
  return Status::Interrupted(fmt::format("run {} was interrupted; resume it with 'resume'", run_id_));
}

}  // namespace cairn
