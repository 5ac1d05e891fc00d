// Engine::RunState's task starts: finding work, cloning a task from the
// origin run on resume, building a task's payload and launching it, and
// following its output.
#include "engine/engine_state.h"

#include <algorithm>
#include <optional>
#include <unordered_set>

#include <fmt/format.h>

#include "util/time.h"

namespace cairn {
namespace {

using nlohmann::json;

}  // namespace

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

}  // namespace cairn
