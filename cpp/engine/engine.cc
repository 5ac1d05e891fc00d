// Engine's run: set-up (the run's row, the reserve, resume's origin), the
// poll loop, the run's end, a full disk and interruption. Starting tasks is
// in engine_task_start.cc, their ends in engine_task_end.cc.
#include "engine/engine.h"

#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "engine/engine_state.h"
#include "store/gc.h"
#include "util/fs.h"
#include "util/time.h"

namespace cairn {
namespace {

using nlohmann::json;

constexpr double kInterruptGrace = 10.0;   // seconds to collect killed tasks

}  // namespace

using engine_internal::kFlushInterval;

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
