"""The two frameworks under test, as users run them: how a flow file is
prepared (Metaflow's is generated from cairn's by swapping the import line),
the environment, the commands, and where each keeps its datastore."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

FLOWS = Path(__file__).resolve().parent / "flows"
_IMPORT = re.compile(r"^from cairn import ", re.MULTILINE)


def base_env(python: str) -> dict[str, str]:
    env = dict(os.environ)
    # Some sandboxes set this; it makes every fresh interpreter recompile its
    # imports, roughly doubling Metaflow's figures. Users run with caching on.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTHONUNBUFFERED", None)
    for var in list(env):
        if var.startswith(("CAIRN_", "METAFLOW_")):
            del env[var]
    env["USER"] = env["USERNAME"] = "bench"
    # The real interpreter first on PATH: a pyenv shim costs ~100 ms per
    # interpreter, which would be charged to every Metaflow task.
    env["PATH"] = str(Path(python).parent) + os.pathsep + env.get("PATH", "")
    return env


class Framework:
    name = ""

    def __init__(self, python: str):
        self.python = python

    def flow(self, source: str, case_dir: Path) -> Path:
        """Copies bench/flows/<source> into the case folder, adapted."""
        target = case_dir / source
        target.write_text(self.adapt((FLOWS / source).read_text()))
        return target

    def adapt(self, text: str) -> str:
        return text

    def env(self, case_dir: Path) -> dict[str, str]:
        env = base_env(self.python)
        tmp = case_dir / ".tmp"
        tmp.mkdir(exist_ok=True)
        env["TMPDIR"] = str(tmp)
        return env

    def run_argv(self, flow: Path, *args: str) -> list[str]:
        raise NotImplementedError

    def resume_argv(self, flow: Path, *args: str) -> list[str]:
        raise NotImplementedError

    def datastore(self, case_dir: Path) -> Path:
        raise NotImplementedError

    def package_dir(self) -> Path:
        raise NotImplementedError

    def foreach_args(self, n: int) -> list[str]:
        return ["--max-num-splits", "20000", "--n", str(n)]


class Cairn(Framework):
    name = "cairn"

    def env(self, case_dir: Path) -> dict[str, str]:
        env = super().env(case_dir)
        env["CAIRN_HOME"] = str(self.datastore(case_dir))
        return env

    def run_argv(self, flow: Path, *args: str) -> list[str]:
        return [self.python, str(flow), "run", *args]

    def resume_argv(self, flow: Path, *args: str) -> list[str]:
        return [self.python, str(flow), "resume", *args]

    def datastore(self, case_dir: Path) -> Path:
        return case_dir / ".cairn"

    def package_dir(self) -> Path:
        out = subprocess.run([self.python, "-c", "import cairn, os; print(os.path.dirname(cairn.__file__))"],
                             capture_output=True, text=True, check=True)
        return Path(out.stdout.strip())


class Metaflow(Framework):
    name = "metaflow"
    _TOP: ClassVar[list[str]] = ["--no-pylint", "--datastore=local", "--metadata=local"]

    def adapt(self, text: str) -> str:
        return _IMPORT.sub("from metaflow import ", text)

    def env(self, case_dir: Path) -> dict[str, str]:
        env = super().env(case_dir)
        env["METAFLOW_HOME"] = str(case_dir / ".mfhome")  # no user config
        env["METAFLOW_DATASTORE_SYSROOT_LOCAL"] = str(case_dir)
        env["METAFLOW_DEFAULT_DATASTORE"] = "local"
        env["METAFLOW_DEFAULT_METADATA"] = "local"
        env["METAFLOW_CLIENT_CACHE_PATH"] = str(case_dir / ".mfcache")
        return env

    def run_argv(self, flow: Path, *args: str) -> list[str]:
        return [self.python, str(flow), *self._TOP, "run", *args]

    def resume_argv(self, flow: Path, *args: str) -> list[str]:
        return [self.python, str(flow), *self._TOP, "resume", *args]

    def datastore(self, case_dir: Path) -> Path:
        return case_dir / ".metaflow"

    def package_dir(self) -> Path:
        out = subprocess.run([self.python, "-c", "import metaflow, os; print(os.path.dirname(metaflow.__file__))"],
                             capture_output=True, text=True, check=True)
        return Path(out.stdout.strip())


def make(name: str, python: str | None = None) -> Framework:
    python = python or sys.executable
    return {"cairn": Cairn, "metaflow": Metaflow}[name](python)
