// RAII wrappers over the SQLite C API that report errors as Status: Db (one
// connection), Stmt (a prepared statement), Txn (a write transaction that
// rolls back unless committed). Lock waits are retried here, so callers never
// see "database is locked".
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "util/result.h"

struct sqlite3;
struct sqlite3_stmt;

namespace cairn {

class Stmt;

// How long one statement waits for a lock inside SQLite's busy handler.
inline constexpr int kSqliteBusyTimeoutMs = 60 * 1000;
// How long Txn keeps retrying BEGIN IMMEDIATE / COMMIT after that.
inline constexpr double kSqliteBusyGiveUpSeconds = 600;

// An open connection. Owns the sqlite3 handle. Not thread-safe: use it from
// one thread at a time.
class Db {
 public:
  // `flags` are SQLITE_OPEN_* flags. Sets the busy timeout and turns on
  // foreign keys; a writable connection also selects WAL and
  // synchronous=NORMAL (WAL is a property of the file, so read-only
  // connections to a WAL database use it too).
  static Result<Db> Open(const std::string& path, int flags);

  Db() = default;
  Db(Db&& other) noexcept;
  Db& operator=(Db&& other) noexcept;
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;
  ~Db();

  // Runs one or more statements that return no rows.
  Status Exec(const std::string& sql);
  Result<Stmt> Prepare(std::string_view sql);

  int64_t LastInsertRowid() const;
  // Rows changed by the latest INSERT/UPDATE/DELETE.
  int64_t Changes() const;
  bool read_only() const { return read_only_; }
  const std::string& path() const { return path_; }
  sqlite3* handle() { return db_; }

  // A Status for result code `rc` with the connection's error message:
  // constraint violations are kInvalidArgument, SQLITE_FULL kNoSpace,
  // SQLITE_CORRUPT/NOTADB kCorruption, the rest kIOError.
  Status Error(int rc, std::string_view context) const;

 private:
  sqlite3* db_ = nullptr;
  std::string path_;
  bool read_only_ = false;
};

// A prepared statement. Owns the sqlite3_stmt; its connection must outlive
// it (the Db object itself may move). Bind errors are remembered and reported by the next Step
// or Run, so binds can be chained:
//   CAIRN_RETURN_IF_ERROR(stmt.Reset().Bind(1, id).Bind(2, name).Run());
class Stmt {
 public:
  Stmt() = default;
  Stmt(Stmt&& other) noexcept;
  Stmt& operator=(Stmt&& other) noexcept;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt();

  // Makes the statement ready to run again (bindings are kept until
  // rebound). Step and Run reset it themselves when it finishes or fails;
  // call Reset when you stop reading rows early.
  Stmt& Reset();
  // Parameters are numbered from 1, as in SQL's ?1.
  Stmt& Bind(int index, int64_t value);
  Stmt& Bind(int index, int value) { return Bind(index, static_cast<int64_t>(value)); }
  Stmt& Bind(int index, double value);
  Stmt& Bind(int index, std::string_view value);
  Stmt& Bind(int index, const char* value) { return Bind(index, std::string_view(value)); }
  Stmt& Bind(int index, const std::string& value) { return Bind(index, std::string_view(value)); }
  Stmt& BindBlob(int index, std::string_view bytes);

  // True if a row is ready to read, false when done.
  Result<bool> Step();
  // Steps to the end, for statements that return no rows.
  Status Run();
  // Calls fn(const Stmt&) on each row, then leaves the statement reset.
  template <typename Fn>
  Status ForEachRow(Fn&& fn) {
    for (;;) {
      Result<bool> row = Step();
      if (!row.ok()) return row.status();
      if (!row.value()) return Status::OK();
      fn(static_cast<const Stmt&>(*this));
    }
  }

  // Columns are numbered from 0. Valid after Step returned true.
  int64_t ColumnInt64(int col) const;
  int ColumnInt(int col) const { return static_cast<int>(ColumnInt64(col)); }
  double ColumnDouble(int col) const;
  std::string ColumnText(int col) const;
  std::string ColumnBlob(int col) const;
  bool ColumnIsNull(int col) const;

 private:
  friend class Db;
  Stmt(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  void NoteBindError(int rc, int index);

  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
  int bind_rc_ = 0;
  int bind_index_ = 0;
  bool has_rows_ = false;  // a row was returned since the last reset
};

// A write transaction (BEGIN IMMEDIATE, so the write lock is taken up front
// and a later write can never fail on a lock held by someone else). Rolls
// back on destruction unless committed. Refers to its Db, which must outlive
// it.
class Txn {
 public:
  // Retries while the database is busy, for up to kSqliteBusyGiveUpSeconds.
  static Result<Txn> Begin(Db& db);

  Txn(Txn&& other) noexcept;
  Txn& operator=(Txn&&) = delete;
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;
  ~Txn();

  Status Commit();

 private:
  explicit Txn(Db* db) : db_(db) {}
  Db* db_;
  bool active_ = true;
};

// One step of a schema migration, from version v to v + 1.
struct SchemaMigration {
  const char* what;  // for error messages
  const char* sql;
};

// A schema versioned by the "schema_version" row of its `meta` table.
// `create_sql` builds version `version` in a new, empty database;
// `migrations[v]` upgrades version v to v + 1. Version 0 is a database from
// before versioning: tables, but no schema_version row.
struct VersionedSchema {
  const char* create_sql;
  int version;
  std::span<const SchemaMigration> migrations;
};

// Creates the schema in an empty database or migrates an older one, all in
// one write transaction, taken only when there is something to do.
// kVersionMismatch if the database is newer than `schema`.
Status CreateOrMigrate(Db& db, const VersionedSchema& schema);
// For read-only connections, which cannot migrate: OK only if the database is
// at exactly `schema.version`; kNotFound if it has no tables yet.
Status CheckSchema(Db& db, const VersionedSchema& schema);

// `s` with its message prefixed by "prefix: ", keeping its code.
Status Annotate(const Status& s, std::string_view prefix);

}  // namespace cairn
