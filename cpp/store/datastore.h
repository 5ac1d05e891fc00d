// Datastore: the SQLite metadata of flows, runs, tasks, attempts, artifacts
// and tags under a datastore root. Engine processes write; everyone else
// opens it read-only. WAL mode: readers never block writers. Writes retry on
// SQLITE_BUSY, so concurrent runs never surface "database is locked".
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "util/process_identity.h"
#include "util/result.h"

namespace cairn {

inline constexpr int kSchemaVersion = 4;

struct ArtifactRecord {
  std::string name;
  std::string digest;     // hex
  int64_t size = 0;       // logical (uncompressed) bytes
  std::string type;       // Python type name, for display
  std::string encoding;   // how Python turns the bytes back: "pickle5", "bytes"
};

struct AttemptRecord {
  int attempt = 0;
  std::string status;     // "running", "succeeded", "failed", "timeout", "killed", "lost"
  int exit_code = -1;
  int signal = 0;
  std::string reason;     // one line for humans
  double started_at = 0;
  double finished_at = 0;
};

struct TaskRecord {
  int64_t run_id = 0;
  std::string step;
  int64_t task_id = 0;
  // "succeeded" or "failed"; "running" from its start until it finishes
  // (left so by an engine that died: no engine is running it any more).
  std::string status;
  int foreach_index = -1;         // innermost foreach index, -1 if none
  std::string clone_key;          // see Plan::CloneKey
  std::string origin;             // pathspec this task was cloned from, or ""
  std::string result_json;        // the task's outcome (foreach count, switch case, ...)
  std::vector<int64_t> parents;   // task ids within the run
  double started_at = 0;
  double finished_at = 0;
  std::vector<AttemptRecord> attempts;
  std::vector<ArtifactRecord> artifacts;
  // Small blobs this task produced, stored in the database with the task:
  // (digest, content). Written by RecordTasks; not filled in by reads.
  std::vector<std::pair<std::string, std::string>> blobs;
};

struct RunRecord {
  int64_t run_id = 0;
  std::string flow;
  // "running", "succeeded", "failed", or "crashed": its engine process died
  // without finishing it. Reads report a "running" run whose engine is gone
  // as crashed; the next engine on its machine stores it so (MarkCrashedRuns).
  std::string status;
  std::string user;
  double created_at = 0;
  double finished_at = 0;         // 0 while running
  int64_t origin_run_id = 0;      // resume: the run it continues, else 0
  int64_t engine_pid = 0;
  int64_t engine_started = 0;     // the engine's start time (ProcessIdentity)
  std::string engine_machine;     // host and boot it ran on (ProcessIdentity)
  std::string params_json;        // {"name": value} as given
  std::string graph_json;         // the GraphSpec it ran
  std::string failure;            // why it failed, one line (run_failures); "" otherwise
  std::vector<std::string> tags;          // user tags
  std::vector<std::string> system_tags;   // "user:alice", "runtime:local", ...
};

struct NewRun {
  std::string flow;
  std::string user;
  int64_t origin_run_id = 0;
  std::string params_json = "{}";
  std::string graph_json = "{}";
  std::vector<std::string> tags;
  std::vector<std::string> system_tags;
};

// What the `blobs` table holds, and how much of it no artifact refers to.
struct SmallBlobUsage {
  int64_t count = 0;
  uint64_t bytes = 0;
  int64_t unreferenced = 0;
  uint64_t unreferenced_bytes = 0;
};

// A run whose status is "running": its engine's pid and when it started.
struct RunningRun {
  int64_t run_id = 0;
  int64_t engine_pid = 0;
  double created_at = 0;
};

class Datastore {
 public:
  enum class Mode { kReadWrite, kReadOnly };
  // Opens (kReadWrite: creates) root/cairn.db. Refuses a database with a
  // newer schema_version (kVersionMismatch); migrates an older one.
  static Result<std::unique_ptr<Datastore>> Open(const std::string& root, Mode mode);
  ~Datastore();
  Datastore(const Datastore&) = delete;
  Datastore& operator=(const Datastore&) = delete;

  const std::string& root() const;
  // How a run's engine process is looked at (CheckProcess by default): a
  // seam for tests, which replace it to act between a read and the look.
  void SetLivenessCheck(std::function<Liveness(const ProcessIdentity&)> check);

  // --- writing (engine) ---
  // Creates the run and records `first_tasks` (their run_id is set to the
  // new run's) in the same transaction, so a run never exists without them:
  // the engine passes its `_parameters` pseudo-task here.
  Result<RunRecord> CreateRun(const NewRun& run, std::vector<TaskRecord> first_tasks = {});
  // `failure`: why the run failed, kept with it.
  Status FinishRun(int64_t run_id, const std::string& status, const std::string& failure = "");
  // Marks "crashed" every run of this machine still stored as running whose
  // engine process is gone (see CheckProcess); returns their ids. Called by
  // each engine as it starts, so that the database itself says so (readers
  // already report such runs as crashed, but cannot write).
  Result<std::vector<int64_t>> MarkCrashedRuns();
  // Commits all the tasks with their attempts and artifacts in one
  // transaction: a task is either wholly there or not at all.
  Status RecordTasks(const std::vector<TaskRecord>& tasks);
  Status AddTags(int64_t run_id, const std::vector<std::string>& tags);
  Status RemoveTags(int64_t run_id, const std::vector<std::string>& tags);
  // Removes `remove`, then adds `add`, in one transaction: a reader sees the
  // run's tags before or after, never in between.
  Status ReplaceTags(int64_t run_id, const std::vector<std::string>& remove,
                     const std::vector<std::string>& add);

  // --- reading (client, resume) ---
  Result<std::vector<std::string>> Flows();
  // When the oldest run of `flow` that still exists was created; 0 if none.
  Result<double> FirstRunTime(const std::string& flow);
  // Newest first. `limit` 0: all. `before_run_id` > 0: only runs older than it
  // (keyset pages: each call reads only the rows it returns). graph_json is
  // left empty in these records; GetRun fills it.
  Result<std::vector<RunRecord>> Runs(const std::string& flow, int64_t limit = 0,
                                      int64_t before_run_id = 0);
  Result<RunRecord> GetRun(const std::string& flow, int64_t run_id);
  // Tasks of a run (optionally of one step), by task id, with attempts and
  // artifacts filled in.
  Result<std::vector<TaskRecord>> Tasks(int64_t run_id, const std::string& step = "");
  Result<TaskRecord> GetTask(int64_t run_id, int64_t task_id);
  // A small blob kept in the database; kNotFound if it is not there,
  // kCorruption if its content no longer matches its digest.
  Result<std::string> GetBlob(const std::string& digest);
  // Every small blob an artifact of `run_id` refers to (resume needs them).
  Result<std::vector<std::pair<std::string, std::string>>> BlobsOfRun(int64_t run_id);

  // --- maintenance (store/gc.h: cairn gc, cairn du) ---
  Result<int64_t> RunCount();
  Result<std::vector<RunningRun>> RunningRuns();
  // Every digest any artifact of any run refers to, each once.
  Result<std::vector<std::string>> ArtifactDigests();
  // Measures the `blobs` table; with `remove_unreferenced`, deletes the rows
  // no artifact refers to in the same transaction (one statement, so a task
  // recorded meanwhile is either counted as a reference or not yet there).
  Result<SmallBlobUsage> SmallBlobs(bool remove_unreferenced);

 private:
  struct State;
  explicit Datastore(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace cairn
