"""Damaged blobs, of each kind (raw file, zstd file, small blob in SQLite) and
at each place (header, body, trailer, truncation, deletion): reading the
damaged run's artifact reports the damage; a new run of the same flow stores
the value again, which repairs it, and a resume then succeeds too."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cairn import Flow, _core, client
from cairn.errors import CairnError

pytestmark = pytest.mark.faults

FLOW = """
import os
import random
from cairn import FlowSpec, step


class CorruptFlow(FlowSpec):
    @step
    def start(self):
        self.raw = random.Random(0).randbytes(50000)    # incompressible: a raw file
        self.packed = b"cairn " * 10000                 # compressible: a zstd file
        self.small = "a small value"                    # at most 4 KiB: a row of the blobs table
        self.next(self.end)

    @step
    def end(self):
        if os.path.exists("FAIL_END"):
            raise RuntimeError("end fails, so that there is something to resume")
        self.sizes = (len(self.raw), len(self.packed), self.small)


if __name__ == "__main__":
    CorruptFlow()
"""

EXPECTED = {
    "raw": __import__("random").Random(0).randbytes(50000),
    "packed": b"cairn " * 10000,
    "small": "a small value",
}
DAMAGES = ["header", "body", "trailer", "truncation", "deletion"]


def run_flow(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CAIRN_HOME": str(tmp / ".cairn")}
    return subprocess.run([sys.executable, str(tmp / "corrupt_flow.py"), *args], cwd=tmp, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def damage_bytes(data: bytes, how: str, body: int = 0) -> bytes | None:
    """The damaged content (the body starting at offset `body`), or None to delete it."""
    if how == "deletion":
        return None
    if how == "truncation":
        return data[:-1]
    at = {"header": 0, "body": body + (len(data) - body) // 2, "trailer": len(data) - 1}[how]
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]


def damage_file(path: str, how: str) -> None:
    data = Path(path).read_bytes()
    os.chmod(path, 0o644)
    segments = int.from_bytes(data[16:24], "little")
    body = (32 + 8 * segments + 63) // 64 * 64  # the header, padded (docs/datastore.md)
    damaged = damage_bytes(data, how, body)
    if damaged is None:
        os.unlink(path)
    else:
        Path(path).write_bytes(damaged)


def damage_row(db_path: Path, digest: str, how: str) -> None:
    db = sqlite3.connect(db_path)
    (data,) = db.execute("SELECT data FROM blobs WHERE digest = ?", (digest,)).fetchone()
    damaged = damage_bytes(bytes(data), how)
    if damaged is None:
        db.execute("DELETE FROM blobs WHERE digest = ?", (digest,))
    else:
        db.execute("UPDATE blobs SET data = ? WHERE digest = ?", (damaged, digest))
    db.commit()
    db.close()


def artifact(run_id: int, name: str):
    client._stores.clear()
    return Flow("CorruptFlow")[str(run_id)]["start"].task[name]


@pytest.mark.parametrize("how", DAMAGES)
def test_damaged_blobs_are_reported_then_repaired_by_a_new_run_and_resume_succeeds(tmp_path, monkeypatch, how):
    monkeypatch.setenv("CAIRN_HOME", str(tmp_path / ".cairn"))
    client.namespace(None)
    (tmp_path / "corrupt_flow.py").write_text(textwrap.dedent(FLOW))
    (tmp_path / "FAIL_END").touch()
    assert run_flow(tmp_path, "run").returncode == 1

    root = tmp_path / ".cairn"
    store = _core.ArtifactStore(str(root))
    digests = {name: artifact(1, name).sha for name in EXPECTED}
    codecs = {name: Path(store.path_of(d)).read_bytes()[12] for name, d in digests.items() if name != "small"}
    assert codecs == {"raw": 0, "packed": 1}  # each kind is what its name says
    assert not os.path.exists(store.path_of(digests["small"]))
    damage_file(store.path_of(digests["raw"]), how)
    damage_file(store.path_of(digests["packed"]), how)
    damage_row(root / "cairn.db", digests["small"], how)

    for name, digest in digests.items():
        with pytest.raises(CairnError) as err:
            _ = artifact(1, name).data
        message = str(err.value)
        assert digest in message
        assert ("not found" in message) if how == "deletion" else ("not found" not in message), message

    (tmp_path / "FAIL_END").unlink()
    rerun = run_flow(tmp_path, "run")
    assert rerun.returncode == 0, rerun.stderr
    for run_id in (1, 2):  # the new run's artifacts, and the damaged run's, repaired
        for name, value in EXPECTED.items():
            assert artifact(run_id, name).data == value, (run_id, name)

    resumed = run_flow(tmp_path, "resume", "--origin-run-id", "1")
    assert resumed.returncode == 0, resumed.stderr
    client._stores.clear()
    run = Flow("CorruptFlow")["3"]
    assert run.successful and run["start"].task.origin_pathspec == "CorruptFlow/1/start/1"
    assert run["end"].task.data.sizes == (50000, 60000, "a small value")
