"""NBRunner: run a flow defined in a notebook cell, as Metaflow's NBRunner.

    class TrainFlow(FlowSpec):
        ...

    run = NBRunner(TrainFlow).nbrun(alpha=0.5)   # on the cell's last line

The cell being executed (its imports and the flow class, up to the end of the
class) is written to a file with the usual `if __name__ == "__main__"` lines,
and run with a Runner from the notebook's working directory, so the run lands
in the datastore the notebook reads."""

from __future__ import annotations

import ast
import os
from typing import Any

from . import client
from .errors import CairnException
from .runner import ExecutingRun, Runner


def _current_cell() -> str:
    try:
        from IPython import get_ipython  # type: ignore[import-not-found]
    except ImportError:
        get_ipython = None
    shell = get_ipython() if get_ipython else None
    if shell is None:
        raise CairnException("NBRunner runs a flow defined in a notebook cell; outside a notebook, "
                             "use Runner('flow.py')")
    return str(shell.history_manager.input_hist_raw[-1])


def flow_file_source(cell: str, flow_name: str) -> str:
    """The cell up to the end of class `flow_name`, then the lines that run it."""
    try:
        tree = ast.parse(cell)
    except SyntaxError as e:
        raise CairnException(f"NBRunner: the cell does not parse: {e}") from None
    found = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == flow_name]
    if not found:
        raise CairnException(f"NBRunner: the cell that calls it must define class {flow_name}")
    lines = cell.splitlines()[: found[0].end_lineno]
    return "\n".join([*lines, "", 'if __name__ == "__main__":', f"    {flow_name}()", ""])


class NBRunner:
    """Runs `flow` (a FlowSpec class defined in the current cell). Keyword
    arguments are those of Runner (`datastore_root=...`, `quiet=True`, ...);
    `base_dir` is where the flow file is written (default: a temporary folder)."""

    def __init__(self, flow: type, show_output: bool = True, env: dict[str, str] | None = None,
                 base_dir: str | None = None, **kwargs: Any):
        import tempfile

        name = getattr(flow, "__name__", None)
        if not isinstance(flow, type) or name is None:
            raise CairnException(f"NBRunner takes the flow class itself, got {flow!r}")
        source = flow_file_source(_current_cell(), name)
        self._tmp = tempfile.TemporaryDirectory(prefix="cairn-nbrun-", dir=base_dir)
        self.flow_file = os.path.join(self._tmp.name, f"{name.lower()}.py")
        with open(self.flow_file, "w") as f:
            f.write(source)
        self.runner = Runner(self.flow_file, show_output=show_output, env=env, cwd=os.getcwd(), **kwargs)

    def nbrun(self, **kwargs: Any) -> client.Run | None:
        """Runs the flow, waits, and returns its Run (None if it never started)."""
        with self.runner.run(**kwargs) as done:
            return done.run

    def nbresume(self, **kwargs: Any) -> client.Run | None:
        with self.runner.resume(**kwargs) as done:
            return done.run

    async def async_run(self, **kwargs: Any) -> ExecutingRun:
        return await self.runner.async_run(**kwargs)

    async def async_resume(self, **kwargs: Any) -> ExecutingRun:
        return await self.runner.async_resume(**kwargs)

    def cleanup(self) -> None:
        self.runner.cleanup()
        self._tmp.cleanup()
