// Datastore's reads: runs, tasks, blobs and the listings the client and the
// garbage collector make. Opening and writing are in datastore.cc.
#include "store/datastore.h"

#include <charconv>
#include <cstdint>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "store/datastore_state.h"
#include "util/digest.h"

namespace cairn {

using datastore_internal::kDbFile;
using datastore_internal::TaskQueries;

namespace {

// A task's `parents` column, as datastore.cc's JoinIds wrote it.
std::vector<int64_t> SplitIds(const std::string& text) {
  std::vector<int64_t> ids;
  const char* p = text.data();
  const char* end = p + text.size();
  while (p < end) {
    int64_t id = 0;
    auto [next, ec] = std::from_chars(p, end, id);
    if (ec != std::errc()) break;
    ids.push_back(id);
    p = next < end && *next == ',' ? next + 1 : next;
    if (next == p && p < end) break;  // neither a number nor a comma
  }
  return ids;
}

RunRecord ReadRun(const Stmt& s) {
  RunRecord r;
  r.run_id = s.ColumnInt64(0);
  r.flow = s.ColumnText(1);
  r.status = s.ColumnText(2);
  r.user = s.ColumnText(3);
  r.created_at = s.ColumnDouble(4);
  r.finished_at = s.ColumnDouble(5);
  r.origin_run_id = s.ColumnInt64(6);
  r.engine_pid = s.ColumnInt64(7);
  r.params_json = s.ColumnText(8);
  r.graph_json = s.ColumnText(9);
  r.engine_started = s.ColumnInt64(10);
  r.engine_machine = s.ColumnText(11);
  r.failure = s.ColumnText(12);
  return r;
}

TaskRecord ReadTask(const Stmt& s) {
  TaskRecord t;
  t.run_id = s.ColumnInt64(0);
  t.task_id = s.ColumnInt64(1);
  t.step = s.ColumnText(2);
  t.status = s.ColumnText(3);
  t.foreach_index = s.ColumnInt(4);
  t.clone_key = s.ColumnText(5);
  t.origin = s.ColumnText(6);
  t.result_json = s.ColumnText(7);
  t.parents = SplitIds(s.ColumnText(8));
  t.started_at = s.ColumnDouble(9);
  t.finished_at = s.ColumnDouble(10);
  return t;
}

AttemptRecord ReadAttempt(const Stmt& s) {
  AttemptRecord a;
  a.attempt = s.ColumnInt(1);
  a.status = s.ColumnText(2);
  a.exit_code = s.ColumnInt(3);
  a.signal = s.ColumnInt(4);
  a.reason = s.ColumnText(5);
  a.started_at = s.ColumnDouble(6);
  a.finished_at = s.ColumnDouble(7);
  return a;
}

ArtifactRecord ReadArtifact(const Stmt& s) {
  ArtifactRecord a;
  a.name = s.ColumnText(1);
  a.digest = s.ColumnText(2);
  a.size = s.ColumnInt64(3);
  a.type = s.ColumnText(4);
  a.encoding = s.ColumnText(5);
  return a;
}

}  // namespace

Result<RunRecord> Datastore::State::LoadRun(const std::string& flow, int64_t run_id) {
  std::optional<RunRecord> record;
  CAIRN_RETURN_IF_ERROR(run.Reset().Bind(1, run_id).Bind(2, flow).ForEachRow(
      [&](const Stmt& row) { record = ReadRun(row); }));
  if (!record) {
    return Status::NotFound("run " + flow + "/" + std::to_string(run_id) + " not found in " + root);
  }
  CAIRN_RETURN_IF_ERROR(tags_of_run.Reset().Bind(1, run_id).ForEachRow([&](const Stmt& row) {
    (row.ColumnInt(2) ? record->system_tags : record->tags).push_back(row.ColumnText(1));
  }));
  CAIRN_RETURN_IF_ERROR(SettleLiveness(&*record));
  return std::move(*record);
}

// A `running` run whose engine process is gone reads as `crashed`. The row
// was read before the process was looked at, so an engine that finished the
// run and exited in between would pass for a crash: an engine records the
// outcome before it exits, so reading the row again after the look tells.
Status Datastore::State::SettleLiveness(RunRecord* r) {
  if (r->status != "running" ||
      liveness({r->engine_pid, r->engine_started, r->engine_machine}) != Liveness::kGone) {
    return Status::OK();
  }
  CAIRN_RETURN_IF_ERROR(run_outcome.Reset().Bind(1, r->run_id).ForEachRow([&](const Stmt& row) {
    r->status = row.ColumnText(0);
    r->finished_at = row.ColumnDouble(1);
    r->failure = row.ColumnText(2);
  }));
  if (r->status == "running") r->status = "crashed";
  return Status::OK();
}

Result<std::vector<TaskRecord>> Datastore::State::LoadTasks(
    TaskQueries& q, const std::function<void(Stmt&)>& bind) {
  std::vector<TaskRecord> tasks;
  bind(q.tasks.Reset());
  CAIRN_RETURN_IF_ERROR(
      q.tasks.ForEachRow([&](const Stmt& row) { tasks.push_back(ReadTask(row)); }));
  // Attempts and artifacts come ordered by task_id, like `tasks`, so one
  // forward walk finds each row's task.
  size_t i = 0;
  auto task_of = [&](const Stmt& row) -> TaskRecord* {
    int64_t task_id = row.ColumnInt64(0);
    while (i < tasks.size() && tasks[i].task_id < task_id) ++i;
    return i < tasks.size() && tasks[i].task_id == task_id ? &tasks[i] : nullptr;
  };
  bind(q.attempts.Reset());
  CAIRN_RETURN_IF_ERROR(q.attempts.ForEachRow([&](const Stmt& row) {
    if (TaskRecord* t = task_of(row)) t->attempts.push_back(ReadAttempt(row));
  }));
  i = 0;
  bind(q.artifacts.Reset());
  CAIRN_RETURN_IF_ERROR(q.artifacts.ForEachRow([&](const Stmt& row) {
    if (TaskRecord* t = task_of(row)) t->artifacts.push_back(ReadArtifact(row));
  }));
  return tasks;
}

Result<std::string> Datastore::GetBlob(const std::string& digest) {
  State& s = *state_;
  std::lock_guard<std::mutex> lock(s.mu);
  Stmt& q = s.blob.Reset().Bind(1, digest);
  CAIRN_ASSIGN_OR_RETURN(bool row, q.Step());
  std::string data = row ? q.ColumnBlob(0) : std::string();
  // A statement left on a row keeps this connection's read snapshot open:
  // the reader would stop seeing new writes.
  q.Reset();
  if (!row) return Status::NotFound("no blob " + digest);
  ByteView view{data.data(), data.size()};
  if (DigestOf(std::span<const ByteView>(&view, 1)) != digest) {
    return Status::Corruption("blob " + digest + " in " + kDbFile + " does not match its digest");
  }
  return data;
}

Result<std::vector<std::pair<std::string, std::string>>> Datastore::BlobsOfRun(int64_t run_id) {
  State& s = *state_;
  std::lock_guard<std::mutex> lock(s.mu);
  std::vector<std::pair<std::string, std::string>> out;
  Stmt& q = s.blobs_of_run.Reset().Bind(1, run_id);
  CAIRN_RETURN_IF_ERROR(q.ForEachRow([&](const Stmt& row) { out.emplace_back(row.ColumnText(0), row.ColumnBlob(1)); }));
  // A damaged row is left out rather than handed to tasks as their input.
  std::erase_if(out, [](const auto& blob) {
    ByteView view{blob.second.data(), blob.second.size()};
    return DigestOf(std::span<const ByteView>(&view, 1)) != blob.first;
  });
  return out;
}

Result<int64_t> Datastore::RunCount() {
  State& s = *state_;
  std::lock_guard<std::mutex> lock(s.mu);
  CAIRN_ASSIGN_OR_RETURN(Stmt q, s.db.Prepare("SELECT count(*) FROM runs"));
  int64_t count = 0;
  CAIRN_RETURN_IF_ERROR(q.ForEachRow([&](const Stmt& row) { count = row.ColumnInt64(0); }));
  return count;
}

Result<std::vector<RunningRun>> Datastore::RunningRuns() {
  State& s = *state_;
  std::lock_guard<std::mutex> lock(s.mu);
  CAIRN_ASSIGN_OR_RETURN(
      Stmt q, s.db.Prepare("SELECT run_id, engine_pid, created_at FROM runs WHERE status = 'running'"));
  std::vector<RunningRun> out;
  CAIRN_RETURN_IF_ERROR(q.ForEachRow([&](const Stmt& row) {
    out.push_back(RunningRun{row.ColumnInt64(0), row.ColumnInt64(1), row.ColumnDouble(2)});
  }));
  return out;
}

Result<std::vector<std::string>> Datastore::ArtifactDigests() {
  State& s = *state_;
  std::lock_guard<std::mutex> lock(s.mu);
  CAIRN_ASSIGN_OR_RETURN(Stmt q, s.db.Prepare("SELECT DISTINCT digest FROM artifacts"));
  std::vector<std::string> out;
  CAIRN_RETURN_IF_ERROR(q.ForEachRow([&](const Stmt& row) { out.push_back(row.ColumnText(0)); }));
  return out;
}

Result<std::vector<std::string>> Datastore::Flows() {
  State& s = *state_;
  std::lock_guard<std::mutex> lock(s.mu);
  std::vector<std::string> names;
  CAIRN_RETURN_IF_ERROR(
      s.flows.Reset().ForEachRow([&](const Stmt& row) { names.push_back(row.ColumnText(0)); }));
  return names;
}

Result<double> Datastore::FirstRunTime(const std::string& flow) {
  State& s = *state_;
  std::lock_guard<std::mutex> lock(s.mu);
  double created_at = 0;
  CAIRN_RETURN_IF_ERROR(s.first_run_time.Reset().Bind(1, flow).ForEachRow(
      [&](const Stmt& row) { created_at = row.ColumnDouble(0); }));  // NULL reads as 0
  return created_at;
}

Result<std::vector<RunRecord>> Datastore::Runs(const std::string& flow, int64_t limit,
                                               int64_t before_run_id) {
  State& s = *state_;
  std::lock_guard<std::mutex> lock(s.mu);
  std::vector<RunRecord> runs;
  // SQLite reads a negative LIMIT as "no limit".
  s.runs_of_flow.Reset().Bind(1, flow).Bind(2, limit > 0 ? limit : int64_t{-1})
      .Bind(3, before_run_id > 0 ? before_run_id : std::numeric_limits<int64_t>::max());
  CAIRN_RETURN_IF_ERROR(
      s.runs_of_flow.ForEachRow([&](const Stmt& row) { runs.push_back(ReadRun(row)); }));
  for (RunRecord& r : runs) CAIRN_RETURN_IF_ERROR(s.SettleLiveness(&r));
  if (runs.empty()) return runs;
  // One query for the tags of all these runs, newest run first like `runs`.
  size_t i = 0;
  s.tags_of_flow.Reset().Bind(1, flow).Bind(2, runs.back().run_id).Bind(3, runs.front().run_id);
  CAIRN_RETURN_IF_ERROR(s.tags_of_flow.ForEachRow([&](const Stmt& row) {
    int64_t run_id = row.ColumnInt64(0);
    while (i < runs.size() && runs[i].run_id > run_id) ++i;
    if (i == runs.size() || runs[i].run_id != run_id) return;
    (row.ColumnInt(2) ? runs[i].system_tags : runs[i].tags).push_back(row.ColumnText(1));
  }));
  return runs;
}

Result<RunRecord> Datastore::GetRun(const std::string& flow, int64_t run_id) {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->LoadRun(flow, run_id);
}

Result<std::vector<TaskRecord>> Datastore::Tasks(int64_t run_id, const std::string& step) {
  State& s = *state_;
  std::lock_guard<std::mutex> lock(s.mu);
  if (step.empty()) {
    return s.LoadTasks(s.of_run, [&](Stmt& q) { q.Bind(1, run_id); });
  }
  return s.LoadTasks(s.of_step, [&](Stmt& q) { q.Bind(1, run_id).Bind(2, step); });
}

Result<TaskRecord> Datastore::GetTask(int64_t run_id, int64_t task_id) {
  State& s = *state_;
  std::lock_guard<std::mutex> lock(s.mu);
  CAIRN_ASSIGN_OR_RETURN(
      std::vector<TaskRecord> tasks,
      s.LoadTasks(s.of_task, [&](Stmt& q) { q.Bind(1, run_id).Bind(2, task_id); }));
  if (tasks.empty()) {
    return Status::NotFound("task " + std::to_string(run_id) + "/" + std::to_string(task_id) +
                            " not found in " + s.root);
  }
  return std::move(tasks.front());
}

}  // namespace cairn
