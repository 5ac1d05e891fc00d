#include "store/sqlite.h"

#include <sqlite3.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <random>
#include <thread>
#include <utility>

#include "util/time.h"

namespace cairn {
namespace {

Status ErrorFor(sqlite3* db, int rc, std::string_view context) {
  std::string msg(context);
  msg += ": ";
  // The connection's message is only about `rc` if it is the latest error.
  if (db != nullptr && (sqlite3_errcode(db) & 0xff) == (rc & 0xff)) {
    msg += sqlite3_errmsg(db);
  } else {
    msg += sqlite3_errstr(rc);
  }
  const char* file = db == nullptr ? nullptr : sqlite3_db_filename(db, "main");
  if (file != nullptr && *file != '\0') {
    msg += " (";
    msg += file;
    msg += ")";
  }
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT: return Status::InvalidArgument(std::move(msg));
    case SQLITE_FULL: return Status::NoSpace(std::move(msg));
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return Status::Corruption(std::move(msg));
    default: return Status::IOError(std::move(msg));
  }
}

// SQLITE_LOCKED is left out on purpose: it is a conflict within one
// connection, which waiting cannot resolve.
bool IsBusy(int rc) { return (rc & 0xff) == SQLITE_BUSY; }

// Waits between retries of a busy operation: exponential from 1 ms up to
// 250 ms, with jitter so that two waiting writers do not retry in lockstep.
// Returns false once the give-up deadline has passed.
class Backoff {
 public:
  Backoff() : deadline_(MonotonicSeconds() + kSqliteBusyGiveUpSeconds) {}
  bool Wait() {
    if (MonotonicSeconds() > deadline_) return false;
    thread_local std::minstd_rand rng{std::random_device{}()};
    int jittered = delay_ms_ / 2 + static_cast<int>(rng() % (delay_ms_ / 2 + 1));
    std::this_thread::sleep_for(std::chrono::milliseconds(std::max(1, jittered)));
    delay_ms_ = std::min(delay_ms_ * 2, 250);
    return true;
  }

 private:
  double deadline_;
  int delay_ms_ = 1;
};

// Runs `sql` (no rows), retrying while the database is busy.
Status ExecRetrying(sqlite3* db, const char* sql, std::string_view context) {
  Backoff backoff;
  for (;;) {
    int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
    if (rc == SQLITE_OK) return Status::OK();
    if (!IsBusy(rc) || !backoff.Wait()) return ErrorFor(db, rc, context);
  }
}

constexpr int kNewDatabase = -1;

// The schema version of `db`: kNewDatabase if it has no tables yet, 0 if it
// predates versioning.
Result<int> ReadSchemaVersion(Db& db) {
  CAIRN_ASSIGN_OR_RETURN(Stmt tables, db.Prepare(
      "SELECT count(*), coalesce(sum(name = 'meta'), 0) FROM sqlite_master "
      "WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"));
  CAIRN_ASSIGN_OR_RETURN(bool row, tables.Step());
  CAIRN_CHECK(row);
  int64_t table_count = tables.ColumnInt64(0);
  bool has_meta = tables.ColumnInt64(1) != 0;
  tables.Reset();
  if (table_count == 0) return kNewDatabase;
  if (!has_meta) return 0;

  CAIRN_ASSIGN_OR_RETURN(Stmt meta, db.Prepare(
      "SELECT value FROM meta WHERE key = 'schema_version'"));
  CAIRN_ASSIGN_OR_RETURN(row, meta.Step());
  if (!row) return 0;
  std::string text = meta.ColumnText(0);
  meta.Reset();
  int version = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), version);
  if (ec != std::errc() || end != text.data() + text.size() || version < 0) {
    return Status::Corruption(db.path() + ": schema_version is \"" + text +
                              "\", not a version number");
  }
  return version;
}

Status CheckNotNewer(const Db& db, int version, int supported) {
  if (version <= supported) return Status::OK();
  return Status::VersionMismatch(
      db.path() + " has schema version " + std::to_string(version) +
      ", but this cairn supports up to version " + std::to_string(supported) +
      "; upgrade cairn to use it");
}

Status WriteSchemaVersion(Db& db, int version) {
  CAIRN_ASSIGN_OR_RETURN(Stmt put, db.Prepare(
      "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?1)"));
  return put.Bind(1, std::to_string(version)).Run();
}

}  // namespace

// --- Db ---

Result<Db> Db::Open(const std::string& path, int flags) {
  Db db;
  db.path_ = path;
  db.read_only_ = (flags & SQLITE_OPEN_READONLY) != 0;
  int rc = sqlite3_open_v2(path.c_str(), &db.db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    // sqlite3_open_v2 hands back a handle even on failure, for the message;
    // `db` closes it.
    return ErrorFor(db.db_, rc, "cannot open " + path);
  }
  sqlite3_extended_result_codes(db.db_, 1);
  sqlite3_busy_timeout(db.db_, kSqliteBusyTimeoutMs);
  if (!db.read_only_) {
    // Switching to WAL needs a moment of exclusive access; another process
    // opening the same file at the same time can make it busy.
    CAIRN_RETURN_IF_ERROR(ExecRetrying(db.db_, "PRAGMA journal_mode=WAL", "set WAL mode"));
    // In WAL mode NORMAL loses at most the latest commits on power loss,
    // never consistency, and saves an fsync per commit.
    CAIRN_RETURN_IF_ERROR(db.Exec("PRAGMA synchronous=NORMAL"));
  }
  CAIRN_RETURN_IF_ERROR(db.Exec("PRAGMA foreign_keys=ON"));
  return db;
}

Db::Db(Db&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)),
      path_(std::move(other.path_)),
      read_only_(other.read_only_) {}

Db& Db::operator=(Db&& other) noexcept {
  if (this != &other) {
    if (db_ != nullptr) sqlite3_close_v2(db_);
    db_ = std::exchange(other.db_, nullptr);
    path_ = std::move(other.path_);
    read_only_ = other.read_only_;
  }
  return *this;
}

Db::~Db() {
  // close_v2 defers the close until every statement is finalized, so the
  // order in which a State struct destroys its members does not matter.
  if (db_ != nullptr) sqlite3_close_v2(db_);
}

Status Db::Exec(const std::string& sql) {
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return Error(rc, "executing SQL");
  return Status::OK();
}

Result<Stmt> Db::Prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    return Error(rc, "preparing \"" + std::string(sql.substr(0, 60)) + "\"");
  }
  return Stmt(db_, stmt);
}

int64_t Db::LastInsertRowid() const { return sqlite3_last_insert_rowid(db_); }

int64_t Db::Changes() const { return sqlite3_changes64(db_); }

Status Db::Error(int rc, std::string_view context) const {
  return ErrorFor(db_, rc, context);
}

// --- Stmt ---

Stmt::Stmt(Stmt&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)),
      stmt_(std::exchange(other.stmt_, nullptr)),
      bind_rc_(other.bind_rc_),
      bind_index_(other.bind_index_),
      has_rows_(other.has_rows_) {}

Stmt& Stmt::operator=(Stmt&& other) noexcept {
  if (this != &other) {
    if (stmt_ != nullptr) sqlite3_finalize(stmt_);
    db_ = std::exchange(other.db_, nullptr);
    stmt_ = std::exchange(other.stmt_, nullptr);
    bind_rc_ = other.bind_rc_;
    bind_index_ = other.bind_index_;
    has_rows_ = other.has_rows_;
  }
  return *this;
}

Stmt::~Stmt() {
  if (stmt_ != nullptr) sqlite3_finalize(stmt_);
}

Stmt& Stmt::Reset() {
  sqlite3_reset(stmt_);
  bind_rc_ = SQLITE_OK;
  has_rows_ = false;
  return *this;
}

void Stmt::NoteBindError(int rc, int index) {
  if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) {
    bind_rc_ = rc;
    bind_index_ = index;
  }
}

Stmt& Stmt::Bind(int index, int64_t value) {
  NoteBindError(sqlite3_bind_int64(stmt_, index, value), index);
  return *this;
}

Stmt& Stmt::Bind(int index, double value) {
  NoteBindError(sqlite3_bind_double(stmt_, index, value), index);
  return *this;
}

Stmt& Stmt::Bind(int index, std::string_view value) {
  // SQLITE_TRANSIENT copies: the caller's string may die before the step.
  NoteBindError(sqlite3_bind_text64(stmt_, index, value.data(), value.size(),
                                    SQLITE_TRANSIENT, SQLITE_UTF8),
                index);
  return *this;
}

Stmt& Stmt::BindBlob(int index, std::string_view bytes) {
  NoteBindError(sqlite3_bind_blob64(stmt_, index, bytes.data(), bytes.size(), SQLITE_TRANSIENT), index);
  return *this;
}

Result<bool> Stmt::Step() {
  if (bind_rc_ != SQLITE_OK) {
    Status s = ErrorFor(db_, bind_rc_, "binding parameter " + std::to_string(bind_index_) +
                                           " of \"" + sqlite3_sql(stmt_) + "\"");
    Reset();
    return s;
  }
  Backoff backoff;
  for (;;) {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) {
      has_rows_ = true;
      return true;
    }
    if (rc == SQLITE_DONE) {
      // Resetting now ends an implicit read transaction, so an idle cached
      // statement never pins an old snapshot of the WAL.
      Reset();
      return false;
    }
    // Outside a transaction, a statement that has returned nothing yet can
    // simply start over: this is how readers ride out the rare busy states
    // (such as WAL recovery) that SQLite's busy handler does not cover.
    bool restartable = !has_rows_ && sqlite3_get_autocommit(db_) != 0;
    if (IsBusy(rc) && restartable && backoff.Wait()) {
      sqlite3_reset(stmt_);
      continue;
    }
    Status s = ErrorFor(db_, rc, std::string("running \"") + sqlite3_sql(stmt_) + "\"");
    Reset();
    return s;
  }
}

Status Stmt::Run() {
  for (;;) {
    Result<bool> row = Step();
    if (!row.ok()) return row.status();
    if (!*row) return Status::OK();
  }
}

int64_t Stmt::ColumnInt64(int col) const { return sqlite3_column_int64(stmt_, col); }

double Stmt::ColumnDouble(int col) const { return sqlite3_column_double(stmt_, col); }

std::string Stmt::ColumnBlob(int col) const {
  const void* data = sqlite3_column_blob(stmt_, col);
  if (data == nullptr) return std::string();
  return std::string(static_cast<const char*>(data), static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
}

std::string Stmt::ColumnText(int col) const {
  const unsigned char* text = sqlite3_column_text(stmt_, col);
  if (text == nullptr) return std::string();
  return std::string(reinterpret_cast<const char*>(text),
                     static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
}

bool Stmt::ColumnIsNull(int col) const {
  return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
}

// --- Txn ---

Result<Txn> Txn::Begin(Db& db) {
  CAIRN_RETURN_IF_ERROR(ExecRetrying(db.handle(), "BEGIN IMMEDIATE", "beginning a transaction"));
  return Txn(&db);
}

Txn::Txn(Txn&& other) noexcept : db_(other.db_), active_(std::exchange(other.active_, false)) {}

Txn::~Txn() {
  // A failed statement may already have rolled SQLite back; rolling back
  // again only if a transaction is still open keeps the error away.
  if (active_ && sqlite3_get_autocommit(db_->handle()) == 0) {
    sqlite3_exec(db_->handle(), "ROLLBACK", nullptr, nullptr, nullptr);
  }
}

Status Txn::Commit() {
  CAIRN_CHECK(active_);
  // A busy COMMIT leaves the transaction open, and retrying it is what the
  // SQLite documentation prescribes.
  Status s = ExecRetrying(db_->handle(), "COMMIT", "committing");
  if (s.ok()) active_ = false;
  return s;
}

// --- schema versions ---

Status CreateOrMigrate(Db& db, const VersionedSchema& schema) {
  CAIRN_CHECK(schema.migrations.size() == static_cast<size_t>(schema.version));
  CAIRN_ASSIGN_OR_RETURN(int version, ReadSchemaVersion(db));
  CAIRN_RETURN_IF_ERROR(CheckNotNewer(db, version, schema.version));
  // A current database needs no write lock, so opening one never waits for a
  // writer.
  if (version == schema.version) return Status::OK();

  CAIRN_ASSIGN_OR_RETURN(Txn txn, Txn::Begin(db));
  // Another process may have created or migrated it while we waited.
  CAIRN_ASSIGN_OR_RETURN(version, ReadSchemaVersion(db));
  CAIRN_RETURN_IF_ERROR(CheckNotNewer(db, version, schema.version));
  if (version == kNewDatabase) {
    CAIRN_RETURN_IF_ERROR(Annotate(db.Exec(schema.create_sql), "creating the schema"));
  } else {
    for (int v = version; v < schema.version; ++v) {
      Status s = db.Exec(schema.migrations[v].sql);
      if (!s.ok()) {
        return Annotate(s, "migrating " + db.path() + " from schema version " +
                               std::to_string(v) + " (" + schema.migrations[v].what + ")");
      }
    }
  }
  CAIRN_RETURN_IF_ERROR(WriteSchemaVersion(db, schema.version));
  return txn.Commit();
}

Status CheckSchema(Db& db, const VersionedSchema& schema) {
  CAIRN_ASSIGN_OR_RETURN(int version, ReadSchemaVersion(db));
  CAIRN_RETURN_IF_ERROR(CheckNotNewer(db, version, schema.version));
  if (version == kNewDatabase) {
    return Status::NotFound(db.path() + " has no tables yet (is a run creating it right now?)");
  }
  if (version < schema.version) {
    return Status::VersionMismatch(
        db.path() + " has schema version " + std::to_string(version) +
        " and this cairn supports version " + std::to_string(schema.version) +
        "; open it read-write once (any run does) to migrate it");
  }
  return Status::OK();
}

Status Annotate(const Status& s, std::string_view prefix) {
  std::string msg = std::string(prefix) + ": " + s.message();
  switch (s.code()) {
    case Status::Code::kOk: return s;
    case Status::Code::kInvalidArgument: return Status::InvalidArgument(std::move(msg));
    case Status::Code::kInvalidGraph: return Status::InvalidGraph(std::move(msg));
    case Status::Code::kNotFound: return Status::NotFound(std::move(msg));
    case Status::Code::kIOError: return Status::IOError(std::move(msg));
    case Status::Code::kCorruption: return Status::Corruption(std::move(msg));
    case Status::Code::kInterrupted: return Status::Interrupted(std::move(msg));
    case Status::Code::kNoSpace: return Status::NoSpace(std::move(msg));
    case Status::Code::kVersionMismatch: return Status::VersionMismatch(std::move(msg));
  }
  return s;
}

}  // namespace cairn
