"""Helpers of the fault suite. The flow runner and wait_until are
tests/python's, loaded by path rather than copied."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

PYTHON_TESTS = Path(__file__).resolve().parents[1] / "python"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


shared = _load("cairn_python_test_conftest", PYTHON_TESTS / "conftest.py")
FlowRunner = shared.FlowRunner
wait_until = _load("cairn_python_test_failures", PYTHON_TESTS / "test_failures.py").wait_until


# kind -> trials and failures, printed at the end of the session.
TRIALS: dict[str, Counter] = {}


def count_trial(kind: str, failed: bool) -> None:
    c = TRIALS.setdefault(kind, Counter())
    c["trials"] += 1
    c["failures"] += int(failed)


def engine_log_tail(root: Path, lines: int = 40) -> str:
    """The end of the engine log of each run under `root` ("" if none)."""
    from cairn.logs import engine_log_tail as tail

    logs = Path(root, "logs")
    runs = sorted(int(p.name) for p in logs.iterdir() if p.name.isdigit()) if logs.is_dir() else []
    return "\n".join(f"--- run {r}\n{t}" for r in runs if (t := tail(str(root), r, lines)))


def start_run(runner, flow: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    """`python flow.py ARGS` in its own session (so its process group can be
    checked afterwards), stdout piped for the test to read."""
    return subprocess.Popen(
        [sys.executable, str(flow), *args], cwd=runner.dir, env={**runner.env, **(env or {})},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )


def wait_for_line(proc: subprocess.Popen, needle: str) -> str:
    """Reads the process's output until a line contains `needle`."""
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if needle in line:
            return line
    raise AssertionError(f"never printed {needle!r}; output:\n{''.join(seen)}")


def fault_seeds(default: int) -> int:
    return int(os.environ.get("CAIRN_FAULT_SEEDS", default))
