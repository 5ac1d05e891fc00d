// Datastore's private state: the connection, its prepared statements and
// the helpers both halves of the class use. Only store/datastore.cc (open,
// writes) and store/datastore_queries.cc (reads) include it.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "store/datastore.h"
#include "store/sqlite.h"
#include "util/process_identity.h"

namespace cairn {
namespace datastore_internal {

inline constexpr char kDbFile[] = "cairn.db";

// The three statements that load a set of tasks. All take ?1 = run_id and
// return rows ordered by task_id, so they merge in one pass.
struct TaskQueries {
  Stmt tasks;
  Stmt attempts;
  Stmt artifacts;
};

}  // namespace datastore_internal

// Everything a Datastore holds. The statements are prepared once at open
// (nix's nar-info-disk-cache pattern): the hot paths only bind and step.
// `mu` serializes all calls, so a Datastore may be shared by threads (the
// bindings release the GIL around it).
struct Datastore::State {
  std::string root;
  Mode mode;
  Db db;
  std::mutex mu;
  std::function<Liveness(const ProcessIdentity&)> liveness = CheckProcess;

  Stmt insert_flow, insert_run, insert_failure, insert_tag, delete_tag, finish_run, run_exists,
      running_here, mark_crashed, run_outcome;
  Stmt insert_task, insert_attempt, insert_artifact, insert_blob, blob, blobs_of_run;
  Stmt flows, runs_of_flow, tags_of_flow, run, tags_of_run, first_run_time;
  datastore_internal::TaskQueries of_run, of_step, of_task;

  Status Prepare();
  Status InsertTask(const TaskRecord& t);
  Status CheckWritable() const;
  Status CheckRunExists(int64_t run_id);
  Result<RunRecord> LoadRun(const std::string& flow, int64_t run_id);
  Status SettleLiveness(RunRecord* r);
  Result<std::vector<TaskRecord>> LoadTasks(datastore_internal::TaskQueries& q, const std::function<void(Stmt&)>& bind);
};

}  // namespace cairn
