// Engine::RunState's task ends: an exit becomes success, a retry or a
// failure (@parallel gangs settle together), and each outcome a task row,
// committed in batches.
#include "engine/engine_state.h"

#include <optional>

#include <fmt/format.h>

#include "util/time.h"

namespace cairn {

using engine_internal::kFlushBatch;
using engine_internal::kFlushInterval;

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

}  // namespace cairn
