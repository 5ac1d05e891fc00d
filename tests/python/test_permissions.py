"""CAIRN_UMASK: the modes of everything a run creates under the datastore."""

from __future__ import annotations

import stat

import pytest

pytestmark = pytest.mark.e2e

BIG = """
from cairn import FlowSpec, step

class BigFlow(FlowSpec):
    @step
    def start(self):
        print("some output")
        self.big = bytes(range(256)) * 400  # large enough for a blob file in objects/
        self.next(self.end)

    @step
    def end(self):
        pass

if __name__ == "__main__":
    BigFlow()
"""


def modes(root) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_mode for p in [root, *root.rglob("*")]}


def test_umask_077_keeps_every_file_to_its_owner(runner):
    flow = runner.write("big.py", BIG)
    runner.run(flow, "run", env={"CAIRN_UMASK": "077"}, check=True)
    found = modes(runner.root)
    kinds = {"cairn.db", "logs/1/engine.log", "logs/1/start/1.0.out"}
    assert kinds <= found.keys()
    blobs = [p for p in found if p.startswith("objects/") and (runner.root / p).is_file()]
    assert blobs, sorted(found)
    for path, mode in found.items():
        assert mode & 0o077 == 0, f"{path}: {oct(mode)}"
    assert stat.S_IMODE(found["cairn.db"]) == 0o600
    assert stat.S_IMODE(found[blobs[0]]) == 0o400  # blobs are read-only


def test_group_mode_makes_a_datastore_a_team_can_share(runner):
    flow = runner.write("big.py", BIG)
    runner.run(flow, "run", env={"CAIRN_UMASK": "group"}, check=True)
    found = modes(runner.root)
    assert found["."] & stat.S_ISGID  # new files take the folder's group
    group = runner.root.stat().st_gid
    for path, mode in found.items():
        assert (runner.root / path).stat().st_gid == group, path
        if stat.S_ISDIR(mode):
            assert stat.S_IMODE(mode) & 0o070 == 0o070, f"{path}: {oct(mode)}"
    assert stat.S_IMODE(found["cairn.db"]) == 0o664
    assert stat.S_IMODE(found["logs/1/engine.log"]) == 0o664


def test_a_bad_umask_is_refused(runner):
    proc = runner.run(runner.write("big.py", BIG), "run", env={"CAIRN_UMASK": "0999"})
    assert proc.returncode == 1 and proc.stderr.startswith("Bad setting: CAIRN_UMASK is '0999'")
