"""Shared fixtures: run real flow files in subprocesses against a datastore in
tmp_path, and read the results back through the client in this process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FLOWS = Path(__file__).parent / "flows"
EXAMPLES = REPO / "examples"


class FlowRunner:
    def __init__(self, tmp_path: Path):
        self.dir = tmp_path
        self.root = tmp_path / ".cairn"
        self.env = {**os.environ, "CAIRN_HOME": str(self.root), "PYTHONUNBUFFERED": "1"}
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)

    def write(self, name: str, source: str) -> Path:
        path = self.dir / name
        path.write_text(textwrap.dedent(source))
        return path

    def copy(self, path: Path) -> Path:
        target = self.dir / path.name
        shutil.copy(path, target)
        return target

    def flow(self, name: str) -> Path:
        """A flow from tests/python/flows."""
        return self.copy(FLOWS / name)

    def run(self, flow: Path | str, *args: str, check: bool | None = None, timeout: float = 120,
            env: dict | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [sys.executable, str(flow), *args], cwd=self.dir, env={**self.env, **(env or {})},
            capture_output=True, text=True, timeout=timeout, check=False,
        )
        if check is True and proc.returncode != 0:
            raise AssertionError(f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
        return proc

    def python(self, code: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """Runs code in a fresh interpreter (as a notebook would) in the flow's folder."""
        return subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)], cwd=self.dir, env=self.env,
            capture_output=True, text=True, timeout=timeout, check=False,
        )


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FlowRunner:
    r = FlowRunner(tmp_path)
    monkeypatch.setenv("CAIRN_HOME", str(r.root))
    monkeypatch.chdir(tmp_path)
    from cairn import client

    client._stores.clear()
    client.namespace(None)
    yield r
    client._stores.clear()
    client.default_namespace()
