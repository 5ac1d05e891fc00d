"""Run a flow file from Python (a notebook, a script), as Metaflow's Runner:

    from cairn import Runner
    with Runner("train.py").run(alpha=0.5, tags=["nightly"]) as result:
        print(result.status, result.run.data.model)

    running = await Runner("train.py").async_run(alpha=0.5)   # returns once the run exists
    async for _, line in running.stream_log("stdout"):
        print(line)
    await running.wait()

Each call starts `python FLOW_FILE run` (or `resume`) in a subprocess with
this interpreter. Its output is kept in files (`stdout` / `stderr`, and
`stream_log`); a blocking call also shows it as it comes (in a notebook,
under the cell). NBRunner (nbrun.py) runs a flow defined in a notebook cell."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from typing import IO, Any

from . import client
from .errors import CairnException, NotFoundError
from .home import DATASTORE_DIR, datastore_root

# Options of `run` and `resume` that are not flow parameters; the rest of the
# keyword arguments are parameters (`alpha=1` becomes `--alpha 1`).
_RUN_OPTIONS = {"tags", "max_workers", "max_num_splits", "with_decorators", "launcher", "quiet",
                "origin_run_id", "step_to_rerun", "namespace"}
_POLL = 0.05  # seconds between looks at a file another process writes


class ExecutingRun:
    """A run started by a Runner: running (async_run) or over (run).

    `status` is 'running', 'successful' or 'failed'; `returncode` is None
    while it runs; `run` is the client's Run (None if the run never started:
    a bad flow or parameter)."""

    def __init__(self, runner: Runner, process: _Process, run: client.Run | None):
        self.runner = runner
        self._process = process
        self.run = run

    @property
    def returncode(self) -> int | None:
        return self._process.popen.poll()

    @property
    def status(self) -> str:
        code = self.returncode
        return "running" if code is None else "successful" if code == 0 else "failed"

    @property
    def stdout(self) -> str:
        """Everything the run printed to stdout so far."""
        return self._process.read("stdout")

    @property
    def stderr(self) -> str:
        return self._process.read("stderr")

    async def wait(self, timeout: float | None = None, stream: str | None = None) -> ExecutingRun:
        """Waits for the run to end; `stream='stdout'` (or 'stderr') prints
        that output meanwhile. Past `timeout` seconds the run is killed and
        TimeoutError raised."""
        import asyncio  # here: `import cairn` stays fast for flows that never use a Runner

        async def follow() -> None:
            if stream is not None:
                async for _, line in self.stream_log(stream):
                    print(line)

        waiter = asyncio.get_running_loop().run_in_executor(None, self._process.wait)
        try:
            await asyncio.wait_for(asyncio.gather(waiter, follow()), timeout)
        except asyncio.TimeoutError:
            self.kill()
            raise TimeoutError(f"the run did not finish within {timeout} s; it was killed") from None
        return self

    async def stream_log(self, stream: str, position: int | None = None) -> AsyncIterator[tuple[int, str]]:
        """(position, line) for each line of 'stdout' or 'stderr' as the run
        writes it, until it ends; `position` (from an earlier pair) resumes there."""
        import asyncio

        path = self._process.path(stream)
        offset = position or 0
        while True:
            running = self.returncode is None or not self._process.drained()
            with open(path, "rb") as f:  # noqa: ASYNC230 - a local file, read from where it was left
                f.seek(offset)
                for raw in f:
                    if not raw.endswith(b"\n") and running:
                        break  # a partial line: wait for the rest
                    offset += len(raw)
                    yield offset, raw.decode("utf-8", errors="replace").rstrip("\n")
            if not running:
                return
            await asyncio.sleep(_POLL)

    def kill(self) -> None:
        """Stops the run (SIGTERM to its process group: the engine records it as failed)."""
        self._process.kill()

    def __enter__(self) -> ExecutingRun:  # noqa: PYI034 - Python 3.9 has no Self
        return self

    def __exit__(self, *exc: object) -> None:
        self.runner.cleanup()

    def __repr__(self) -> str:
        return f"ExecutingRun({self.run!r}, status={self.status!r})"


class _Process:
    """`python FLOW run ...` with its stdout and stderr copied into files
    (and echoed, for a blocking call that shows its output)."""

    def __init__(self, argv: list[str], cwd: str, env: dict[str, str], folder: str, echo: bool):
        import subprocess
        import threading

        self.files = {name: os.path.join(folder, f"{name}.log") for name in ("stdout", "stderr")}
        self.popen = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      start_new_session=True)
        self.pumps = [
            threading.Thread(target=_pump, args=(self.popen.stdout, self.files["stdout"], sys.stdout if echo else None),
                             daemon=True),
            threading.Thread(target=_pump, args=(self.popen.stderr, self.files["stderr"], sys.stderr if echo else None),
                             daemon=True),
        ]
        for t in self.pumps:
            t.start()

    def path(self, stream: str) -> str:
        if stream not in self.files:
            raise CairnException(f"stream must be 'stdout' or 'stderr', got {stream!r}")
        return self.files[stream]

    def read(self, stream: str) -> str:
        with open(self.path(stream), encoding="utf-8", errors="replace") as f:
            return f.read()

    def drained(self) -> bool:
        return not any(t.is_alive() for t in self.pumps)

    def wait(self) -> int:
        code = self.popen.wait()
        for t in self.pumps:
            t.join()
        return code

    def kill(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)


def _pump(source: IO[bytes] | None, path: str, echo: IO[str] | None) -> None:
    assert source is not None
    with open(path, "ab", buffering=0) as sink:
        for line in source:
            sink.write(line)
            if echo is not None:
                echo.write(line.decode("utf-8", errors="replace"))
                echo.flush()
    source.close()


class Runner:
    """Runs the flow in `flow_file`. Keyword arguments are the flow file's
    top-level options: `datastore_root="..."`, `quiet=True`, `pylint=False`.
    `file_read_timeout`: how long async_run waits for the run to exist."""

    def __init__(self, flow_file: str, show_output: bool = True, profile: str | None = None,
                 env: dict[str, str] | None = None, cwd: str | None = None, file_read_timeout: float = 3600,
                 **kwargs: Any):
        if profile is not None:
            raise CairnException(f"Runner(profile={profile!r}): cairn has no configuration profiles; "
                                 f"set CAIRN_* variables with env={{...}}")
        self.file_read_timeout = file_read_timeout
        self.flow_file = os.path.abspath(os.path.join(cwd or os.getcwd(), flow_file))
        self.show_output = show_output
        self.cwd = os.path.abspath(cwd) if cwd else os.getcwd()
        self.env = {**os.environ, **(env or {})}
        self.root = _root_for(kwargs.pop("datastore_root", None), self.env, self.cwd)
        self.top_options = _top_options(kwargs)
        self._tmp: Any = None  # a TemporaryDirectory for run id files and logs
        self._calls = 0

    def run(self, **kwargs: Any) -> ExecutingRun:
        """Runs the flow and waits for it; keyword arguments are parameters and
        run options (tags=[...], max_workers=4, with_decorators=["retry"], ...)."""
        return self._blocking("run", kwargs)

    def resume(self, **kwargs: Any) -> ExecutingRun:
        """Resumes the latest run (or origin_run_id=N) from its failed step
        (or step_to_rerun="name"), and waits for it."""
        return self._blocking("resume", kwargs)

    async def async_run(self, **kwargs: Any) -> ExecutingRun:
        """Starts the run; returns as soon as it exists (or failed to start)."""
        return await self._started("run", kwargs)

    async def async_resume(self, **kwargs: Any) -> ExecutingRun:
        return await self._started("resume", kwargs)

    def cleanup(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Runner:  # noqa: PYI034 - Python 3.9 has no Self
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def _start(self, command: str, kwargs: dict[str, Any], echo: bool) -> tuple[_Process, str]:
        if self._tmp is None:
            import tempfile

            self._tmp = tempfile.TemporaryDirectory(prefix="cairn-runner-")
        self._calls += 1
        folder = os.path.join(self._tmp.name, f"{self._calls}-{command}")
        os.makedirs(folder)
        id_file = os.path.join(folder, "run-id")
        argv = [sys.executable, self.flow_file, "--datastore-root", self.root, *self.top_options,
                command, *_command_line(dict(kwargs)), "--run-id-file", id_file]
        return _Process(argv, self.cwd, self.env, folder, echo), id_file

    def _blocking(self, command: str, kwargs: dict[str, Any]) -> ExecutingRun:
        process, id_file = self._start(command, kwargs, echo=self.show_output)
        process.wait()
        return ExecutingRun(self, process, self._run_of(id_file))

    async def _started(self, command: str, kwargs: dict[str, Any]) -> ExecutingRun:
        import asyncio

        process, id_file = self._start(command, kwargs, echo=False)
        # The engine writes the id file as soon as the run exists.
        deadline = time.monotonic() + self.file_read_timeout
        while not os.path.exists(id_file) and process.popen.poll() is None:
            if time.monotonic() > deadline:
                process.kill()
                raise CairnException(f"the run did not start within file_read_timeout={self.file_read_timeout} s")
            await asyncio.sleep(_POLL)
        return ExecutingRun(self, process, self._run_of(id_file))

    def _run_of(self, id_file: str) -> client.Run | None:
        if not os.path.exists(id_file):
            return None
        with open(id_file) as f:
            return _find_run(self.root, int(f.read().strip()))


def _top_options(kwargs: dict[str, Any]) -> list[str]:
    """Top-level options: `quiet=True` -> --quiet, `pylint=False` -> --no-pylint,
    `metadata="local"` -> --metadata local."""
    out: list[str] = []
    for key, value in kwargs.items():
        flag = key.replace("_", "-")
        if value is True:
            out.append(f"--{flag}")
        elif value is False:
            out.append(f"--no-{flag}")
        elif value is not None:
            out += [f"--{flag}", str(value)]
    return out


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
    """The datastore the child will use (the rules of home.datastore_root,
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
