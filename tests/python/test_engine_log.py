"""The engine log of each run (logs/<run>/engine.log): what the engine did,
shown by `python flow.py logs RUN --engine` and `cairn logs --engine RUN`;
and `cairn logs FLOW/RUN[/STEP[/TASK]]` for task output."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e

RETRY_FLOW = """
from cairn import FlowSpec, current, retry, step

class RetryFlow(FlowSpec):
    @retry(times=1, minutes_between_retries=0)
    @step
    def start(self):
        print("attempt", current.retry_count)
        if current.retry_count == 0:
            raise ValueError("first try fails")
        self.next(self.end)

    @step
    def end(self):
        print("the end")

if __name__ == "__main__":
    RetryFlow()
"""


def cairn(runner, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cairn", *args], cwd=runner.dir, env=runner.env,
                          capture_output=True, text=True, check=False)


def test_engine_log_records_tasks_retries_commits_and_the_end(runner):
    flow = runner.write("retry.py", RETRY_FLOW)
    runner.run(flow, "run", check=True)
    log = (runner.root / "logs" / "1" / "engine.log").read_text()
    for line in ("run RetryFlow/1 started: engine pid", "task 1/start/1 started",
                 "task 1/start/1 failed: exited (exit code 1", "ValueError: first try fails",
                 "task 1/start/1 will be retried in 0.0 s", "task 1/start/1 (attempt 1) succeeded",
                 "committed 2 task record(s)", "run 1 succeeded: 2 task(s) succeeded"):
        assert line in log, line

    from cairn.logs import engine_log_tail

    assert engine_log_tail(str(runner.root), 1, 2).splitlines() == log.splitlines()[-2:]
    assert engine_log_tail(str(runner.root), 99) == ""
    shown = runner.run(flow, "logs", "1", "--engine", check=True).stdout
    assert shown == log
    assert cairn(runner, "logs", "--engine", "1").stdout == log
    assert cairn(runner, "logs", "--engine", "RetryFlow/1").stdout == log

    # A resume logs its clones.
    runner.run(flow, "resume", "end", check=True)
    assert "task 2/start/1 cloned from RetryFlow/1/start/1" in (
        runner.root / "logs" / "2" / "engine.log").read_text()


def test_cairn_logs_prints_task_output_like_the_flow_cli(runner):
    flow = runner.write("retry.py", RETRY_FLOW)
    runner.run(flow, "run", check=True)
    assert cairn(runner, "logs", "RetryFlow/1/end").stdout == "the end\n"
    assert runner.run(flow, "logs", "1/end").stdout == "the end\n"
    assert cairn(runner, "logs", "RetryFlow/1/start/1", "--attempt", "0", "--stdout").stdout == "attempt 0\n"
    # Without --stdout the attempt's stderr follows, on stdout too (as Metaflow prints a log).
    both = cairn(runner, "logs", "RetryFlow/1/start/1", "--attempt", "0")
    assert both.stdout.startswith("attempt 0\nTraceback") and both.stderr == ""
    whole = cairn(runner, "logs", "RetryFlow/1").stdout
    assert "--- RetryFlow/1/start/1 (attempt 1)\nattempt 1\n" in whole
    assert "--- RetryFlow/1/end/2 (attempt 0)\nthe end\n" in whole
    missing = cairn(runner, "logs", "--engine", "99")
    assert missing.returncode == 1 and missing.stderr.startswith("Not found: run 99 has no engine log")


def test_log_level_comes_from_cairn_log_level_and_a_bad_one_is_refused(runner):
    flow = runner.write("retry.py", RETRY_FLOW)
    bad = runner.run(flow, "run", env={"CAIRN_LOG_LEVEL": "chatty"})
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.strip() == ("Bad setting: CAIRN_LOG_LEVEL is 'chatty'; expected one of trace, debug, "
                                  "info, warning, warn, error, off")
    assert not (runner.root / "cairn.db").exists()  # refused before anything was written

    runner.run(flow, "run", env={"CAIRN_LOG_LEVEL": "warning"}, check=True)
    log = (runner.root / "logs" / "1" / "engine.log").read_text()
    assert "started" not in log and "task 1/start/1 failed" in log
