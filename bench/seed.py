"""Setup for the 'list' case: fills a cairn datastore with many runs fast.

cairn._core.Datastore offers no writer for whole runs (only the engine
writes runs), so this clones one real run's rows in SQLite directly: for
every table with a run_id column (runs, tags, tasks, attempts, artifacts in
cpp/store/schema.sql), the template run's rows are copied with run_id
shifted, in one transaction. Columns are read from the database, so a new
column does not break it. Blobs are shared, as identical runs would share
them. Not timed."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def clone_runs(db_path: Path, flow: str, total: int) -> None:
    """Makes `flow` have `total` runs, cloning its only run."""
    con = sqlite3.connect(db_path)
    try:
        (template,) = con.execute("SELECT MAX(run_id) FROM runs WHERE flow = ?", (flow,)).fetchone()
        if template is None:
            raise RuntimeError(f"no run of {flow} to clone in {db_path}")
        if total <= 1:
            return
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        with con:
            for table in tables:
                cols = [r[1] for r in con.execute(f"PRAGMA table_info({table})")]
                if "run_id" not in cols:
                    continue
                shifted = []
                for c in cols:
                    if c == "run_id":
                        shifted.append("t.run_id + k.i")
                    elif table == "runs" and c in ("created_at", "finished_at"):
                        shifted.append(f"t.{c} + k.i")  # newer runs are newer
                    else:
                        shifted.append(f"t.{c}")
                con.execute(
                    f"WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ?) "
                    f"INSERT INTO {table} ({', '.join(cols)}) "
                    f"SELECT {', '.join(shifted)} FROM {table} t, k WHERE t.run_id = ?",
                    (total - 1, template),
                )
        (count,) = con.execute("SELECT COUNT(*) FROM runs WHERE flow = ?", (flow,)).fetchone()
        if count != total:
            raise RuntimeError(f"{db_path}: {count} runs of {flow} after cloning, expected {total}")
    finally:
        con.close()
