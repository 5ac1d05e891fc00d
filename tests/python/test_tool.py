"""The `cairn` command: help lists every tool, and the tools read the datastore."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cairn import tool


def test_help_lists_every_registered_tool(capsys: pytest.CaptureFixture) -> None:
    assert tool.main([]) == 0
    out = capsys.readouterr().out
    for name in tool.TOOLS:
        assert name in out


def test_version_and_runs_as_python_m_cairn(runner) -> None:
    flow = runner.write("hi.py", """
        from cairn import FlowSpec, step
        class HiFlow(FlowSpec):
            @step
            def start(self):
                self.next(self.end)
            @step
            def end(self):
                pass
        if __name__ == "__main__":
            HiFlow()
    """)
    runner.run(flow, "run", check=True)
    out = subprocess.run([sys.executable, "-m", "cairn", "runs"], cwd=runner.dir, env=runner.env,
                         capture_output=True, text=True, check=True).stdout
    assert out.startswith("HiFlow/1\tsucceeded\t")
    version = subprocess.run([sys.executable, "-m", "cairn", "version"], capture_output=True, text=True,
                             check=True).stdout
    assert version.startswith("cairn ")
