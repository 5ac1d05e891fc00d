// Datastore: opening (and migrating) the database, and the engine's writes.
// The reads are in datastore_queries.cc.
#include "store/datastore.h"

#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <functional>
#include <iterator>
#include <mutex>
#include <optional>

#include <fmt/format.h>

#include "store/datastore_state.h"
#include "store/schema_sql.h"
#include "store/sqlite.h"
#include "util/fs.h"
#include "util/process_identity.h"
#include "util/time.h"

namespace cairn {

using datastore_internal::kDbFile;

namespace {

// kMigrations[v] upgrades a database from schema version v to v + 1. They run
// in order inside the transaction that opens the database, so a failed step
// leaves the file as it was. kSchemaSql is always the newest schema and is
// only used for new databases: a step must not rely on it, because it will
// have moved on by the time an old database meets the step.
constexpr SchemaMigration kMigrations[] = {
    // 0 → 1: databases from before versioning have all the tables but no
    // schema_version row, and possibly no meta table.
    {"add the meta table",
     "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"},
    // 1 → 2: small blobs move into the database.
    {"add the blobs table",
     "CREATE TABLE IF NOT EXISTS blobs (digest TEXT PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID;"},
    // 2 → 3: who the engine is, beyond its pid, so readers can tell a crashed
    // run (its engine gone) from a running one.
    {"record the engine's start time and machine",
     "ALTER TABLE runs ADD COLUMN engine_started INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE runs ADD COLUMN engine_machine TEXT NOT NULL DEFAULT '';"
     "CREATE INDEX IF NOT EXISTS runs_running ON runs(engine_machine) WHERE status = 'running';"},
    // 3 → 4: a failed run keeps its reason.
    {"add the run_failures table",
     "CREATE TABLE IF NOT EXISTS run_failures (run_id INTEGER PRIMARY KEY REFERENCES runs(run_id), "
     "failure TEXT NOT NULL);"},
};
static_assert(std::size(kMigrations) == kSchemaVersion,
              "every schema version needs a migration step from the one before");
constexpr VersionedSchema kSchema{kSchemaSql, kSchemaVersion, kMigrations};

std::string JoinIds(const std::vector<int64_t>& ids) {
  std::string out;
  for (int64_t id : ids) {
    if (!out.empty()) out += ',';
    out += std::to_string(id);
  }
  return out;
}

#define RUN_FAILURE \
  "COALESCE((SELECT failure FROM run_failures f WHERE f.run_id = runs.run_id), '')"
#define RUN_COLUMNS                                                         \
  "run_id, flow, status, user, created_at, finished_at, origin_run_id, " \
  "engine_pid, params_json, graph_json, engine_started, engine_machine, " RUN_FAILURE
#define TASK_COLUMNS                                                          \
  "run_id, task_id, step, status, foreach_index, clone_key, origin, "       \
  "result_json, parents, started_at, finished_at"
#define ATTEMPT_COLUMNS \
  "task_id, attempt, status, exit_code, signal, reason, started_at, finished_at"
#define ARTIFACT_COLUMNS "task_id, name, digest, size, type, encoding"

// kNotFound if there is no database, with a hint; an error that says so if
// this process may not read it (a datastore of another user's, mode 0700).
Status CheckReadable(const std::string& root, const std::string& path) {
  if (::access(path.c_str(), R_OK) == 0) return Status::OK();
  if (errno == EACCES || errno == EPERM) {
    return Status::IOError("permission denied: cannot read the cairn datastore " + path +
                           " (its folder or file does not let this user read it)");
  }
  if (errno == ENOENT && Exists(root) && ::access(root.c_str(), X_OK) != 0) {
    return Status::IOError("permission denied: cannot enter the cairn datastore folder " + root);
  }
  return Status::NotFound("no cairn datastore at " + path + " (has anything run here yet?)");
}

// `path` as an SQLite URI opening the file immutable (read-only, no locking).
std::string ImmutableUri(const std::string& path) {
  std::string uri = "file:";
  for (char c : path) {
    if (c == '%' || c == '?' || c == '#') {
      uri += fmt::format("%{:02X}", static_cast<unsigned char>(c));
    } else {
      uri += c;
    }
  }
  return uri + "?immutable=1";
}

}  // namespace

Status Datastore::State::Prepare() {
  // ?2 of the step and task variants is the step name or the task id.
  const std::pair<Stmt*, const char*> statements[] = {
      {&insert_flow, "INSERT OR IGNORE INTO flows (name, created_at) VALUES (?1, ?2)"},
      {&insert_run,
       "INSERT INTO runs (flow, status, user, created_at, origin_run_id, engine_pid, "
       "params_json, graph_json, engine_started, engine_machine) "
       "VALUES (?1, 'running', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"},
      {&insert_tag, "INSERT OR IGNORE INTO tags (run_id, tag, system) VALUES (?1, ?2, ?3)"},
      {&delete_tag, "DELETE FROM tags WHERE run_id = ?1 AND tag = ?2 AND system = 0"},
      {&finish_run, "UPDATE runs SET status = ?2, finished_at = ?3 WHERE run_id = ?1"},
      {&insert_failure, "INSERT OR REPLACE INTO run_failures (run_id, failure) VALUES (?1, ?2)"},
      {&run_exists, "SELECT 1 FROM runs WHERE run_id = ?1"},
      {&running_here,
       "SELECT run_id, engine_pid, engine_started FROM runs "
       "WHERE status = 'running' AND engine_machine = ?1"},
      {&mark_crashed, "UPDATE runs SET status = 'crashed' WHERE run_id = ?1 AND status = 'running'"},
      {&run_outcome, "SELECT status, finished_at, " RUN_FAILURE " FROM runs WHERE run_id = ?1"},
      {&insert_task,
       // OR REPLACE: a task's `running` row is overwritten when it finishes.
       "INSERT OR REPLACE INTO tasks (" TASK_COLUMNS ") "
       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"},
      {&insert_attempt,
       "INSERT OR REPLACE INTO attempts (run_id, " ATTEMPT_COLUMNS ") "
       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"},
      {&insert_artifact,
       "INSERT INTO artifacts (run_id, " ARTIFACT_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"},
      // Stored once per value; a row whose bytes differ (damaged) is rewritten.
      // The comparison costs a memcmp of at most 4 KiB, and only on a conflict.
      {&insert_blob,
       "INSERT INTO blobs (digest, data) VALUES (?1, ?2) ON CONFLICT (digest) "
       "DO UPDATE SET data = excluded.data WHERE blobs.data IS NOT excluded.data"},
      {&blob, "SELECT data FROM blobs WHERE digest = ?1"},
      {&blobs_of_run,
       "SELECT b.digest, b.data FROM blobs b WHERE b.digest IN "
       "(SELECT digest FROM artifacts WHERE run_id = ?1)"},
      {&flows, "SELECT name FROM flows ORDER BY name"},
      {&first_run_time, "SELECT MIN(created_at) FROM runs WHERE flow = ?1"},
      {&runs_of_flow,
       // A listing leaves out the GraphSpec (hundreds of bytes to tens of KB
       // a run, which no listing shows): '' in its place. GetRun has it.
       "SELECT run_id, flow, status, user, created_at, finished_at, origin_run_id, engine_pid, "
       "params_json, '', engine_started, engine_machine, " RUN_FAILURE " FROM runs "
       "WHERE flow = ?1 AND run_id < ?3 ORDER BY run_id DESC LIMIT ?2"},
      {&tags_of_flow,
       "SELECT t.run_id, t.tag, t.system FROM tags t JOIN runs r ON r.run_id = t.run_id "
       "WHERE r.flow = ?1 AND t.run_id BETWEEN ?2 AND ?3 ORDER BY t.run_id DESC, t.tag"},
      {&run, "SELECT " RUN_COLUMNS " FROM runs WHERE run_id = ?1 AND flow = ?2"},
      {&tags_of_run, "SELECT run_id, tag, system FROM tags WHERE run_id = ?1 ORDER BY tag"},
      {&of_run.tasks, "SELECT " TASK_COLUMNS " FROM tasks WHERE run_id = ?1 ORDER BY task_id"},
      {&of_run.attempts,
       "SELECT " ATTEMPT_COLUMNS " FROM attempts WHERE run_id = ?1 ORDER BY task_id, attempt"},
      {&of_run.artifacts,
       "SELECT " ARTIFACT_COLUMNS " FROM artifacts WHERE run_id = ?1 ORDER BY task_id, name"},
      {&of_step.tasks,
       "SELECT " TASK_COLUMNS " FROM tasks WHERE run_id = ?1 AND step = ?2 ORDER BY task_id"},
      {&of_step.attempts,
       "SELECT " ATTEMPT_COLUMNS " FROM attempts WHERE run_id = ?1 AND task_id IN "
       "(SELECT task_id FROM tasks WHERE run_id = ?1 AND step = ?2) ORDER BY task_id, attempt"},
      {&of_step.artifacts,
       "SELECT " ARTIFACT_COLUMNS " FROM artifacts WHERE run_id = ?1 AND task_id IN "
       "(SELECT task_id FROM tasks WHERE run_id = ?1 AND step = ?2) ORDER BY task_id, name"},
      {&of_task.tasks, "SELECT " TASK_COLUMNS " FROM tasks WHERE run_id = ?1 AND task_id = ?2"},
      {&of_task.attempts,
       "SELECT " ATTEMPT_COLUMNS " FROM attempts WHERE run_id = ?1 AND task_id = ?2 "
       "ORDER BY attempt"},
      {&of_task.artifacts,
       "SELECT " ARTIFACT_COLUMNS " FROM artifacts WHERE run_id = ?1 AND task_id = ?2 "
       "ORDER BY name"},
  };
  for (const auto& [stmt, sql] : statements) {
    CAIRN_ASSIGN_OR_RETURN(*stmt, db.Prepare(sql));
  }
  return Status::OK();
}

// Inserts one task with its attempts, artifacts and small blobs. REQUIRES:
// an open transaction, which the caller rolls back on error.
Status Datastore::State::InsertTask(const TaskRecord& t) {
  Status st = insert_task.Reset()
                  .Bind(1, t.run_id).Bind(2, t.task_id).Bind(3, t.step).Bind(4, t.status)
                  .Bind(5, t.foreach_index).Bind(6, t.clone_key).Bind(7, t.origin)
                  .Bind(8, t.result_json).Bind(9, JoinIds(t.parents))
                  .Bind(10, t.started_at).Bind(11, t.finished_at)
                  .Run();
  for (const AttemptRecord& a : t.attempts) {
    if (!st.ok()) break;
    st = insert_attempt.Reset()
             .Bind(1, t.run_id).Bind(2, t.task_id).Bind(3, a.attempt).Bind(4, a.status)
             .Bind(5, a.exit_code).Bind(6, a.signal).Bind(7, a.reason)
             .Bind(8, a.started_at).Bind(9, a.finished_at)
             .Run();
  }
  for (const ArtifactRecord& a : t.artifacts) {
    if (!st.ok()) break;
    st = insert_artifact.Reset()
             .Bind(1, t.run_id).Bind(2, t.task_id).Bind(3, a.name).Bind(4, a.digest)
             .Bind(5, a.size).Bind(6, a.type).Bind(7, a.encoding)
             .Run();
  }
  for (const auto& [digest, data] : t.blobs) {
    if (!st.ok()) break;
    st = insert_blob.Reset().Bind(1, digest).BindBlob(2, data).Run();
  }
  if (st.ok()) return st;
  return Annotate(st, "recording task " + std::to_string(t.run_id) + "/" +
                          std::to_string(t.task_id) + " (step " + t.step + ")");
}

Status Datastore::State::CheckWritable() const {
  if (mode == Mode::kReadWrite) return Status::OK();
  return Status::InvalidArgument(db.path() + " is open read-only");
}

Status Datastore::State::CheckRunExists(int64_t run_id) {
  CAIRN_ASSIGN_OR_RETURN(bool found, run_exists.Reset().Bind(1, run_id).Step());
  run_exists.Reset();
  if (!found) return Status::NotFound("run " + std::to_string(run_id) + " not found in " + root);
  return Status::OK();
}

// --- Datastore ---

Result<std::unique_ptr<Datastore>> Datastore::Open(const std::string& root, Mode mode) {
  std::string path = root + "/" + kDbFile;
  // State::mu serializes every use of the connection.
  int flags = SQLITE_OPEN_NOMUTEX;
  std::string open_path = path;
  if (mode == Mode::kReadOnly) {
    CAIRN_RETURN_IF_ERROR(CheckReadable(root, path));
    flags |= SQLITE_OPEN_READONLY;
    if (!Exists(path + "-wal") && ::access(root.c_str(), W_OK) != 0) {
      // An idle WAL database (no -wal file: its last writer checkpointed it
      // and left) in a folder this reader cannot write, as for another user
      // or on a read-only file system: SQLite cannot create the -shm file a
      // WAL reader needs, and says "attempt to write a readonly database".
      // SQLite's answer is to open it immutable: no locks, no -shm. Safe while
      // nobody writes, and nobody can: a writer needs the folder writable too.
      open_path = ImmutableUri(path);
      flags |= SQLITE_OPEN_URI;
    }
  } else {
    CAIRN_RETURN_IF_ERROR(MakeDirs(root));
    flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  }
  CAIRN_ASSIGN_OR_RETURN(Db db, Db::Open(open_path, flags));
  CAIRN_RETURN_IF_ERROR(mode == Mode::kReadOnly ? CheckSchema(db, kSchema)
                                                : CreateOrMigrate(db, kSchema));
  auto state = std::make_unique<State>();
  state->root = root;
  state->mode = mode;
  state->db = std::move(db);
  CAIRN_RETURN_IF_ERROR(state->Prepare());
  return std::unique_ptr<Datastore>(new Datastore(std::move(state)));
}

Datastore::Datastore(std::unique_ptr<State> state) : state_(std::move(state)) {}

Datastore::~Datastore() = default;

const std::string& Datastore::root() const { return state_->root; }

void Datastore::SetLivenessCheck(std::function<Liveness(const ProcessIdentity&)> check) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->liveness = std::move(check);
}

Result<RunRecord> Datastore::CreateRun(const NewRun& run, std::vector<TaskRecord> first_tasks) {
  State& s = *state_;
  std::lock_guard<std::mutex> lock(s.mu);
  CAIRN_RETURN_IF_ERROR(s.CheckWritable());
  if (run.flow.empty()) return Status::InvalidArgument("CreateRun: empty flow name");
  double now = WallSeconds();
  ProcessIdentity engine = SelfIdentity();
  int64_t run_id = 0;
  {
    CAIRN_ASSIGN_OR_RETURN(Txn txn, Txn::Begin(s.db));
    CAIRN_RETURN_IF_ERROR(s.insert_flow.Reset().Bind(1, run.flow).Bind(2, now).Run());
    CAIRN_RETURN_IF_ERROR(s.insert_run.Reset()
                              .Bind(1, run.flow).Bind(2, run.user).Bind(3, now)
                              .Bind(4, run.origin_run_id).Bind(5, engine.pid)
                              .Bind(6, run.params_json).Bind(7, run.graph_json)
                              .Bind(8, engine.start_ticks).Bind(9, engine.machine)
                              .Run());
    run_id = s.db.LastInsertRowid();
    for (int system : {0, 1}) {
      for (const std::string& tag : system ? run.system_tags : run.tags) {
        CAIRN_RETURN_IF_ERROR(
            s.insert_tag.Reset().Bind(1, run_id).Bind(2, tag).Bind(3, system).Run());
      }
    }
    for (TaskRecord& t : first_tasks) {
      t.run_id = run_id;
      CAIRN_RETURN_IF_ERROR(s.InsertTask(t));
    }
    CAIRN_RETURN_IF_ERROR(txn.Commit());
  }
  // Read back what was stored (a tag given twice is stored once).
  return s.LoadRun(run.flow, run_id);
}

Status Datastore::FinishRun(int64_t run_id, const std::string& status, const std::string& failure) {
  State& s = *state_;
  std::lock_guard<std::mutex> lock(s.mu);
  CAIRN_RETURN_IF_ERROR(s.CheckWritable());
  CAIRN_ASSIGN_OR_RETURN(Txn txn, Txn::Begin(s.db));
  CAIRN_RETURN_IF_ERROR(
      s.finish_run.Reset().Bind(1, run_id).Bind(2, status).Bind(3, WallSeconds()).Run());
  if (s.db.Changes() == 0) {
    return Status::NotFound("run " + std::to_string(run_id) + " not found in " + s.root);
  }
  if (!failure.empty()) {
    CAIRN_RETURN_IF_ERROR(s.insert_failure.Reset().Bind(1, run_id).Bind(2, failure).Run());
  }
  return txn.Commit();
}

Result<std::vector<int64_t>> Datastore::MarkCrashedRuns() {
  State& s = *state_;
  std::lock_guard<std::mutex> lock(s.mu);
  CAIRN_RETURN_IF_ERROR(s.CheckWritable());
  ProcessIdentity self = SelfIdentity();
  std::vector<int64_t> crashed;
  if (self.machine.empty()) return crashed;
  CAIRN_RETURN_IF_ERROR(s.running_here.Reset().Bind(1, self.machine).ForEachRow([&](const Stmt& row) {
    ProcessIdentity engine{row.ColumnInt64(1), row.ColumnInt64(2), self.machine};
    if (CheckProcess(engine) == Liveness::kGone) crashed.push_back(row.ColumnInt64(0));
  }));
  if (crashed.empty()) return crashed;
  CAIRN_ASSIGN_OR_RETURN(Txn txn, Txn::Begin(s.db));
  for (int64_t run_id : crashed) {
    CAIRN_RETURN_IF_ERROR(s.mark_crashed.Reset().Bind(1, run_id).Run());
  }
  CAIRN_RETURN_IF_ERROR(txn.Commit());
  return crashed;
}

Status Datastore::RecordTasks(const std::vector<TaskRecord>& tasks) {
  State& s = *state_;
  std::lock_guard<std::mutex> lock(s.mu);
  CAIRN_RETURN_IF_ERROR(s.CheckWritable());
  if (tasks.empty()) return Status::OK();
  CAIRN_ASSIGN_OR_RETURN(Txn txn, Txn::Begin(s.db));
  for (const TaskRecord& t : tasks) CAIRN_RETURN_IF_ERROR(s.InsertTask(t));  // `txn` rolls back
  return txn.Commit();
}

Result<SmallBlobUsage> Datastore::SmallBlobs(bool remove_unreferenced) {
  State& s = *state_;
  std::lock_guard<std::mutex> lock(s.mu);
  if (remove_unreferenced) CAIRN_RETURN_IF_ERROR(s.CheckWritable());
  std::optional<Txn> txn;
  if (remove_unreferenced) {
    CAIRN_ASSIGN_OR_RETURN(Txn t, Txn::Begin(s.db));
    txn.emplace(std::move(t));
  }
  SmallBlobUsage usage;
  CAIRN_ASSIGN_OR_RETURN(
      Stmt q, s.db.Prepare("SELECT count(*), coalesce(sum(length(data)), 0), "
                           "coalesce(sum(digest NOT IN (SELECT digest FROM artifacts)), 0), "
                           "coalesce(sum(CASE WHEN digest NOT IN (SELECT digest FROM artifacts) "
                           "THEN length(data) ELSE 0 END), 0) FROM blobs"));
  CAIRN_RETURN_IF_ERROR(q.ForEachRow([&](const Stmt& row) {
    usage.count = row.ColumnInt64(0);
    usage.bytes = static_cast<uint64_t>(row.ColumnInt64(1));
    usage.unreferenced = row.ColumnInt64(2);
    usage.unreferenced_bytes = static_cast<uint64_t>(row.ColumnInt64(3));
  }));
  if (txn) {
    CAIRN_RETURN_IF_ERROR(
        s.db.Exec("DELETE FROM blobs WHERE digest NOT IN (SELECT digest FROM artifacts)"));
    CAIRN_RETURN_IF_ERROR(txn->Commit());
  }
  return usage;
}

Status Datastore::AddTags(int64_t run_id, const std::vector<std::string>& tags) {
  return ReplaceTags(run_id, {}, tags);
}

Status Datastore::RemoveTags(int64_t run_id, const std::vector<std::string>& tags) {
  return ReplaceTags(run_id, tags, {});
}

Status Datastore::ReplaceTags(int64_t run_id, const std::vector<std::string>& remove,
                              const std::vector<std::string>& add) {
  State& s = *state_;
  std::lock_guard<std::mutex> lock(s.mu);
  CAIRN_RETURN_IF_ERROR(s.CheckWritable());
  CAIRN_ASSIGN_OR_RETURN(Txn txn, Txn::Begin(s.db));
  CAIRN_RETURN_IF_ERROR(s.CheckRunExists(run_id));
  // System tags are facts about the run, not the user's to remove.
  for (const std::string& tag : remove) {
    CAIRN_RETURN_IF_ERROR(s.delete_tag.Reset().Bind(1, run_id).Bind(2, tag).Run());
  }
  for (const std::string& tag : add) {
    CAIRN_RETURN_IF_ERROR(s.insert_tag.Reset().Bind(1, run_id).Bind(2, tag).Bind(3, 0).Run());
  }
  return txn.Commit();
}

}  // namespace cairn
