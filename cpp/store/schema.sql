-- cairn datastore schema. Documented in docs/datastore.md; any change bumps
-- schema_version (meta table) and adds a migration in datastore.cc.
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS flows (
  name       TEXT PRIMARY KEY,
  created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
  run_id        INTEGER PRIMARY KEY AUTOINCREMENT,
  flow          TEXT NOT NULL REFERENCES flows(name),
  status        TEXT NOT NULL,            -- running | succeeded | failed | crashed
  user          TEXT NOT NULL,
  created_at    REAL NOT NULL,
  finished_at   REAL NOT NULL DEFAULT 0,
  origin_run_id INTEGER NOT NULL DEFAULT 0,
  engine_pid    INTEGER NOT NULL DEFAULT 0,
  engine_started INTEGER NOT NULL DEFAULT 0, -- engine's start time, /proc/<pid>/stat ticks
  engine_machine TEXT NOT NULL DEFAULT '',   -- "<host>/<boot id>" the engine ran on
  params_json   TEXT NOT NULL DEFAULT '{}',
  graph_json    TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS runs_by_flow ON runs(flow, run_id);
-- The runs not marked finished: what an engine checks for crashed ones.
CREATE INDEX IF NOT EXISTS runs_running ON runs(engine_machine) WHERE status = 'running';
-- Why a failed run failed (one line), written with its final status.
CREATE TABLE IF NOT EXISTS run_failures (
  run_id  INTEGER PRIMARY KEY REFERENCES runs(run_id),
  failure TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tags (
  run_id INTEGER NOT NULL REFERENCES runs(run_id),
  tag    TEXT NOT NULL,
  system INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (run_id, tag)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tasks (
  run_id        INTEGER NOT NULL REFERENCES runs(run_id),
  task_id       INTEGER NOT NULL,
  step          TEXT NOT NULL,
  status        TEXT NOT NULL,            -- running | succeeded | failed
  foreach_index INTEGER NOT NULL DEFAULT -1,
  clone_key     TEXT NOT NULL,
  origin        TEXT NOT NULL DEFAULT '',
  result_json   TEXT NOT NULL DEFAULT '{}',
  parents       TEXT NOT NULL DEFAULT '',  -- task ids, comma separated
  started_at    REAL NOT NULL,
  finished_at   REAL NOT NULL,
  PRIMARY KEY (run_id, task_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tasks_by_step ON tasks(run_id, step, task_id);
CREATE TABLE IF NOT EXISTS attempts (
  run_id      INTEGER NOT NULL,
  task_id     INTEGER NOT NULL,
  attempt     INTEGER NOT NULL,
  status      TEXT NOT NULL,              -- running | succeeded | failed | timeout | killed | lost
  exit_code   INTEGER NOT NULL,
  signal      INTEGER NOT NULL,
  reason      TEXT NOT NULL,
  started_at  REAL NOT NULL,
  finished_at REAL NOT NULL,
  PRIMARY KEY (run_id, task_id, attempt)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS artifacts (
  run_id   INTEGER NOT NULL,
  task_id  INTEGER NOT NULL,
  name     TEXT NOT NULL,
  digest   TEXT NOT NULL,
  size     INTEGER NOT NULL,
  type     TEXT NOT NULL,
  encoding TEXT NOT NULL,
  PRIMARY KEY (run_id, task_id, name)
) WITHOUT ROWID;
-- Small blobs (a few KiB) live here instead of in objects/: a file per tiny
-- value costs an inode allocation, the most expensive part of a short task.
-- Same digests as objects/; data is the blob's single segment, uncompressed.
CREATE TABLE IF NOT EXISTS blobs (
  digest TEXT PRIMARY KEY,
  data   BLOB NOT NULL
) WITHOUT ROWID;
