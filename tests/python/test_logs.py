"""Logs: every attempt's stdout and stderr are streamed to the terminal and
kept; `logs` prints them; the client reads them; 100 MB of output from one
task does not grow the engine's memory."""

from __future__ import annotations

import subprocess
import sys

import pytest
from cairn import Flow

pytestmark = pytest.mark.e2e

LOGS_FLOW = """
import os, sys
from cairn import FlowSpec, current, step

class LogsFlow(FlowSpec):
    @step
    def start(self):
        print("hello from start")
        print("a warning from start", file=sys.stderr)
        self.items = ["x", "y"]
        self.next(self.each, foreach="items")

    @step
    def each(self):
        print(f"item {self.input}")
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        if os.path.exists("FAIL_END"):
            raise RuntimeError("end fails")
        print("the end")

if __name__ == "__main__":
    LogsFlow()
"""


def test_output_is_streamed_and_kept_per_task(runner):
    flow = runner.write("logs_flow.py", LOGS_FLOW)
    proc = runner.run(flow, "run", check=True)
    assert "[1/start/1] hello from start" in proc.stdout
    assert "[1/start/1] a warning from start" in proc.stderr  # stderr stays stderr
    assert "[1/each/2] item x" in proc.stdout and "[1/each/3] item y" in proc.stdout

    kept = sorted(p.relative_to(runner.root / "logs").as_posix() for p in (runner.root / "logs").rglob("*.*"))
    assert kept == ["1/each/2.0.out", "1/each/3.0.out", "1/end/5.0.out", "1/engine.log", "1/start/1.0.err",
                    "1/start/1.0.out"]

    start = Flow("LogsFlow")["1"]["start"].task
    assert (start.stdout, start.stderr) == ("hello from start\n", "a warning from start\n")
    assert Flow("LogsFlow")["1"]["join"].task.stdout == ""  # silent tasks cost no files

    # As Metaflow prints them: the log itself on stdout, whichever stream it is.
    out = runner.run(flow, "logs", "1/start/1", check=True)
    assert (out.stdout, out.stderr) == ("hello from start\na warning from start\n", "")
    out = runner.run(flow, "logs", "1/start", "--stderr", check=True)
    assert (out.stdout, out.stderr) == ("a warning from start\n", "")
    out = runner.run(flow, "logs", "LogsFlow/1/each", check=True)
    assert out.stdout == ("--- LogsFlow/1/each/2 (attempt 0)\nitem x\n"
                          "--- LogsFlow/1/each/3 (attempt 0)\nitem y\n")

    out = runner.run(flow, "logs", "1/start/1", "--attempt", "3")
    assert out.returncode == 1 and "has no attempt 3" in out.stderr
    out = runner.run(flow, "logs", "1/nosuchstep")
    assert out.returncode == 1 and "Not found" in out.stderr


def test_a_cloned_task_shows_the_output_of_its_origin(runner):
    flow = runner.write("logs_flow.py", LOGS_FLOW)
    (runner.dir / "FAIL_END").touch()
    assert runner.run(flow, "run").returncode == 1
    (runner.dir / "FAIL_END").unlink()
    runner.run(flow, "resume", check=True)
    start = Flow("LogsFlow")["2"]["start"].task
    assert start.origin_pathspec == "LogsFlow/1/start/1"
    assert start.stdout == "hello from start\n"
    assert runner.run(flow, "logs", "2/start/1", "--stdout", check=True).stdout == "hello from start\n"
    assert "RuntimeError: end fails" in runner.run(flow, "logs", "1/end/5", check=True).stdout


LOUD_FLOW = """
import os, sys
from cairn import FlowSpec, step

class LoudFlow(FlowSpec):
    @step
    def start(self):
        if os.environ["LOUD"] == "1":
            chunk = ("x" * 1023 + "\\n") * 1024  # 1 MiB
            for _ in range(100):
                sys.stdout.write(chunk)
        else:
            print("quiet")
        self.next(self.end)

    @step
    def end(self):
        pass

if __name__ == "__main__":
    LoudFlow()
"""

# Runs a command with its stdout thrown away and prints the peak RSS (KiB)
# of the largest process among its descendants: the engine, since the task
# writes in 1 MiB pieces.
PEAK_RSS = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def test_a_hundred_megabytes_of_output_do_not_grow_the_engine(runner):
    flow = runner.write("loud.py", LOUD_FLOW)

    def peak_kib(loud: str) -> int:
        proc = subprocess.run(
            [sys.executable, "-c", PEAK_RSS, sys.executable, str(flow), "run"],
            cwd=runner.dir, env={**runner.env, "LOUD": loud}, capture_output=True, text=True, timeout=120,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        return int(proc.stdout)

    quiet, loud = peak_kib("0"), peak_kib("1")
    assert loud - quiet < 20 * 1024, f"peak RSS {quiet} KiB quiet, {loud} KiB with 100 MiB of output"
    log = runner.root / "logs" / "2" / "start" / "1.0.out"
    assert log.stat().st_size == 100 * 1024 * 1024
    with open(runner.dir / "copy.txt", "wb") as out:
        subprocess.run([sys.executable, str(flow), "logs", "2/start/1"], cwd=runner.dir, env=runner.env,
                       stdout=out, check=True, timeout=120)
    assert (runner.dir / "copy.txt").stat().st_size == log.stat().st_size
