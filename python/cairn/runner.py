"""Run a flow file from Python (a notebook, a script), as Metaflow's Runner:

    from cairn import Runner
    with Runner("train.py").run(alpha=0.5, tags=["nightly"]) as result:
        print(result.status, result.run.data.model)

Each call starts `python FLOW_FILE run` (or `resume`) in a subprocess with
this interpreter, waits for it, and returns an ExecutingRun whose `run` is the
client's Run. Output is shown as it comes (in a notebook, under the cell) and
kept in `stdout` / `stderr`."""

from __future__ import annotations

import json
import os
import sys
from typing import IO, Any

from . import client
from .errors import NotFoundError
from .runtime import DATASTORE_DIR, datastore_root

# Options of `run` and `resume` that are not flow parameters; the rest of the
# keyword arguments are parameters (`alpha=1` becomes `--alpha 1`).
_RUN_OPTIONS = {"tags", "max_workers", "max_num_splits", "with_decorators", "launcher", "quiet",
                "origin_run_id", "step_to_rerun"}


class ExecutingRun:
    """The outcome of Runner.run() / Runner.resume()."""

    def __init__(self, runner: Runner, returncode: int, stdout: str, stderr: str,
                 run: client.Run | None):
        self.runner = runner
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.run = run  # None if the run never started (a bad flow or parameter)

    @property
    def status(self) -> str:
        """'successful' or 'failed', as Metaflow's ExecutingRun says."""
        return "successful" if self.returncode == 0 else "failed"

    def __enter__(self) -> ExecutingRun:  # noqa: PYI034 - Python 3.9 has no Self
        return self

    def __exit__(self, *exc: object) -> None:
        self.runner.cleanup()

    def __repr__(self) -> str:
        return f"ExecutingRun({self.run!r}, status={self.status!r})"


class Runner:
    """Runs the flow in `flow_file`. Keyword arguments are the flow file's
    top-level options: `datastore_root="..."`, `quiet=True`, `debug=True`."""

    def __init__(self, flow_file: str, show_output: bool = True, env: dict[str, str] | None = None,
                 cwd: str | None = None, **kwargs: Any):
        self.flow_file = os.path.abspath(os.path.join(cwd or os.getcwd(), flow_file))
        self.show_output = show_output
        self.cwd = os.path.abspath(cwd) if cwd else os.getcwd()
        self.env = {**os.environ, **(env or {})}
        self.root = _root_for(kwargs.pop("datastore_root", None), self.env, self.cwd)
        self.top_options = [f"--{k.replace('_', '-')}" for k, v in kwargs.items() if v is True]
        self._tmp: Any = None  # a TemporaryDirectory for the run id files

    def run(self, **kwargs: Any) -> ExecutingRun:
        """Runs the flow; keyword arguments are parameters and run options
        (tags=[...], max_workers=4, with_decorators=["retry"], ...)."""
        return self._execute("run", kwargs)

    def resume(self, **kwargs: Any) -> ExecutingRun:
        """Resumes the latest run (or origin_run_id=N) from its failed step
        (or step_to_rerun="name")."""
        return self._execute("resume", kwargs)

    def cleanup(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Runner:  # noqa: PYI034 - Python 3.9 has no Self
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def _execute(self, command: str, kwargs: dict[str, Any]) -> ExecutingRun:
        # Imported here: `import cairn` stays fast for flows that never use a Runner.
        import subprocess
        import tempfile
        import threading

        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="cairn-runner-")
        id_file = os.path.join(self._tmp.name, f"run-id-{command}")
        if os.path.exists(id_file):
            os.unlink(id_file)
        argv = [sys.executable, self.flow_file, "--datastore-root", self.root, *self.top_options,
                command, *_command_line(kwargs), "--run-id-file", id_file]
        proc = subprocess.Popen(argv, cwd=self.cwd, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, errors="replace")
        out: list[str] = []
        err: list[str] = []
        readers = [threading.Thread(target=self._pump, args=(proc.stdout, out, sys.stdout), daemon=True),
                   threading.Thread(target=self._pump, args=(proc.stderr, err, sys.stderr), daemon=True)]
        for t in readers:
            t.start()
        returncode = proc.wait()
        for t in readers:
            t.join()
        run = None
        if os.path.exists(id_file):
            with open(id_file) as f:
                run = _find_run(self.root, int(f.read().strip()))
        return ExecutingRun(self, returncode, "".join(out), "".join(err), run)

    def _pump(self, stream: IO[str] | None, sink: list[str], echo: IO[str]) -> None:
        assert stream is not None
        for line in stream:
            sink.append(line)
            if self.show_output:
                echo.write(line)
        stream.close()


def _command_line(kwargs: dict[str, Any]) -> list[str]:
    args: list[str] = []
    step = kwargs.pop("step_to_rerun", None)
    if step:
        args.append(str(step))
    for key, value in kwargs.items():
        if value is None or value is False:
            continue
        if key == "tags":
            args += [a for tag in value for a in ("--tag", str(tag))]
        elif key == "with_decorators":
            args += [a for deco in value for a in ("--with", str(deco))]
        elif key in _RUN_OPTIONS:
            args += [f"--{key.replace('_', '-')}"] + ([] if value is True else [str(value)])
        else:
            # A parameter: its command-line name is the name it was declared with.
            text = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
            args += [f"--{key}", text]
    return args


def _root_for(explicit: str | None, env: dict[str, str], cwd: str) -> str:
    """The datastore the child will use (the rules of runtime.datastore_root,
    applied to its environment and working directory)."""
    if explicit or env.get("CAIRN_HOME"):
        return os.path.abspath(os.path.join(cwd, explicit or env["CAIRN_HOME"]))
    if cwd == os.getcwd():
        return datastore_root()
    here = cwd
    while True:
        if os.path.isdir(os.path.join(here, DATASTORE_DIR)):
            return os.path.join(here, DATASTORE_DIR)
        if os.path.dirname(here) == here:
            return os.path.join(cwd, DATASTORE_DIR)
        here = os.path.dirname(here)


def _find_run(root: str, run_id: int) -> client.Run:
    # Run ids are unique across the flows of a datastore; the flow is the one
    # that has this id.
    for flow in client._datastore(root).flows():
        try:
            return client.Run(f"{flow}/{run_id}", _namespace_check=False, _root=root)
        except NotFoundError:
            continue
    raise NotFoundError(f"run {run_id} not found in {root}")
