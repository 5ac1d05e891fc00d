"""@retry, @catch, @timeout and @environment, on real task processes, and
`run --with` applying them to every step."""

from __future__ import annotations

import pytest
from cairn import Flow, Task, catch, retry, timeout
from cairn.runtime.task import StepFailure
from test_failures import process_gone, wait_until

pytestmark = pytest.mark.e2e


def test_retry_records_every_attempt_with_its_reason_and_logs(runner):
    flow = runner.write(
        "retries.py",
        """
        import os, signal, sys
        from cairn import FlowSpec, current, retry, step

        class RetryFlow(FlowSpec):
            @retry(times=2, minutes_between_retries=0)
            @step
            def start(self):
                print(f"out of attempt {current.retry_count}")
                print(f"err of attempt {current.retry_count}", file=sys.stderr, flush=True)
                if current.retry_count == 0:
                    raise ValueError("first try")
                if current.retry_count == 1:
                    os.kill(os.getpid(), signal.SIGSEGV)
                self.seen = current.retry_count
                self.next(self.end)

            @retry(times=1, minutes_between_retries=0.01)
            @step
            def end(self):
                if current.retry_count == 0:
                    sys.exit(4)

        if __name__ == "__main__":
            RetryFlow()
        """,
    )
    proc = runner.run(flow, "run", check=True)
    run = Flow("RetryFlow").latest_run
    assert run.successful
    start = run["start"].task
    assert start.successful and start.data.seen == 2
    got = [(a.attempt, a.status, a.exit_code, a.signal) for a in start.attempts]
    assert got == [(0, "failed", 1, 0), (1, "killed", -1, 11), (2, "succeeded", 0, 0)]
    assert start.attempts[0].reason == "ValueError: first try"
    assert start.attempts[1].reason == "the task was killed by signal 11 (SIGSEGV)"
    for n in range(3):
        attempt = Task(start.pathspec, attempt=n)
        assert attempt.stdout == f"out of attempt {n}\n"
        assert attempt.stderr.startswith(f"err of attempt {n}\n")
    assert start.stdout == "out of attempt 2\n"  # the last attempt by default
    logs = runner.run(flow, "logs", "1/start/1", "--attempt", "1", "--stderr", check=True)
    assert logs.stderr == "" and logs.stdout.startswith("err of attempt 1\n")  # the log, on stdout
    assert "Segmentation fault" in logs.stdout
    assert "[1/start/1 (attempt 1)] Task is retrying." in proc.stdout
    assert "[1/start/1] Task failed: ValueError: first try (will retry)" in proc.stdout

    end = run["end"].task
    first, second = end.attempts
    assert (first.status, first.exit_code, second.status) == ("failed", 4, "succeeded")
    # minutes_between_retries=0.01 is accepted; as in Metaflow's local
    # runtime the retry does not wait (test_strictness checks that).


def test_retries_exhausted_fail_the_run(runner):
    flow = runner.write(
        "always.py",
        """
        from cairn import FlowSpec, retry, step

        class AlwaysFlow(FlowSpec):
            @retry(times=1, minutes_between_retries=0)
            @step
            def start(self):
                raise RuntimeError("never works")
                self.next(self.end)

            @step
            def end(self):
                pass

        if __name__ == "__main__":
            AlwaysFlow()
        """,
    )
    proc = runner.run(flow, "run")
    assert proc.returncode == 1
    task = Flow("AlwaysFlow").latest_run["start"].task
    assert not task.successful
    assert [(a.attempt, a.status) for a in task.attempts] == [(0, "failed"), (1, "failed")]


CATCH_FLOW = """
import os, signal
from cairn import FlowSpec, catch, current, retry, step

class CatchFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.soft, self.hard, self.fine)

    @catch(var="failure")
    @retry(times=1, minutes_between_retries=0)
    @step
    def soft(self):
        self.partial = current.retry_count
        raise ValueError(f"bad on attempt {current.retry_count}")
        self.next(self.join)

    @catch(var="crash", print_exception=False)
    @step
    def hard(self):
        os.kill(os.getpid(), signal.SIGSEGV)
        self.next(self.join)

    @catch(var="never")
    @step
    def fine(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.failure = inputs.soft.failure
        self.partial = inputs.soft.partial
        self.crash = inputs.hard.crash
        self.never = inputs.fine.never
        self.next(self.end)

    @step
    def end(self):
        print("caught:", self.failure, "|", self.crash)

if __name__ == "__main__":
    CatchFlow()
"""


def test_catch_stores_the_failure_and_the_flow_continues(runner):
    proc = runner.run(runner.write("catching.py", CATCH_FLOW), "run", check=True)
    run = Flow("CatchFlow").latest_run
    assert run.successful

    # An exception on the last attempt is caught in the task: what the step
    # set before failing is kept.
    soft = run["soft"].task
    assert soft.successful
    assert [(a.attempt, a.status) for a in soft.attempts] == [(0, "failed"), (1, "succeeded")]
    assert soft.attempts[1].reason == "@catch caught: ValueError: bad on attempt 1"
    failure = soft.data.failure
    assert isinstance(failure, StepFailure)
    assert (failure.type, failure.message) == ("ValueError", "bad on attempt 1")
    assert 'raise ValueError(f"bad on attempt' in failure.stacktrace
    assert soft.data.partial == 1
    assert "@catch: step 'soft' failed; the flow continues. ValueError: bad on attempt 1" in soft.stderr

    # A crash cannot be caught in the process: the engine runs a fallback attempt.
    hard = run["hard"].task
    assert hard.successful
    assert [(a.attempt, a.status, a.signal) for a in hard.attempts] == [(0, "killed", 11), (1, "succeeded", 0)]
    crash = hard.data.crash
    assert crash.type == "TaskKilled" and crash.message == "the task was killed by signal 11 (SIGSEGV)"
    assert "@catch" not in Task(hard.pathspec, attempt=1).stderr  # print_exception=False

    # A step that succeeds sets the variable to None, as in Metaflow.
    fine = run["fine"].task
    assert fine.data.never is None and fine.attempts[0].reason == ""
    assert run["end"].task.data.failure.message == "bad on attempt 1"
    assert "caught: ValueError: bad on attempt 1 | TaskKilled: the task was killed by signal 11" in proc.stdout


def test_timeout_kills_the_process_group_and_is_retried(runner):
    flow = runner.write(
        "hangs.py",
        """
        import subprocess, time
        from cairn import FlowSpec, current, retry, step, timeout

        class HangFlow(FlowSpec):
            @retry(times=1, minutes_between_retries=0)
            @timeout(seconds=1)
            @step
            def start(self):
                child = subprocess.Popen(["sleep", "300"])
                with open(f"sleep.{current.retry_count}.pid", "w") as f:
                    f.write(str(child.pid))
                time.sleep(300)
                self.next(self.end)

            @step
            def end(self):
                pass

        if __name__ == "__main__":
            HangFlow()
        """,
    )
    proc = runner.run(flow, "run")
    assert proc.returncode == 1
    task = Flow("HangFlow").latest_run["start"].task
    # @timeout raises TimeoutException in the step (as in Metaflow); the
    # processes the step started are killed when it leaves.
    assert [(a.attempt, a.status, a.signal) for a in task.attempts] == [(0, "failed", 0), (1, "failed", 0)]
    assert all(a.reason.startswith("TimeoutException: step 'start' timed out after 1 s") for a in task.attempts)
    for n in (0, 1):
        pid = int((runner.dir / f"sleep.{n}.pid").read_text())
        assert wait_until(lambda pid=pid: process_gone(pid)), f"attempt {n}'s sleep {pid} survived the timeout"


def test_decorator_arguments_follow_metaflow():
    # The step gets the exception at step_timeout_s; the engine kills at
    # timeout_s, after a grace of a tenth of the timeout (1 to 10 s).
    assert timeout(minutes=2, hours=1).graph_options() == {
        "timeout_s": 3730.0, "step_timeout_s": 3720.0}
    assert timeout(seconds=30).graph_options() == {"timeout_s": 33.0, "step_timeout_s": 30.0}
    # Metaflow's local runtime retries at once, whatever minutes_between_retries says.
    assert retry().graph_options() == {"retries": 3, "retry_delay_s": 0.0}
    assert catch(var="oops").graph_options() == {"catch": True, "catch_var": "oops"}
    with pytest.raises(Exception, match="unknown argument"):
        retry(tries=3)


def test_environment_sets_variables_in_the_task(runner):
    flow = runner.write(
        "env.py",
        """
        import os
        from cairn import FlowSpec, environment, step

        class EnvFlow(FlowSpec):
            @environment(vars={"CAIRN_TEST_GREETING": "hi", "CAIRN_TEST_N": 3})
            @step
            def start(self):
                self.seen = (os.environ["CAIRN_TEST_GREETING"], os.environ["CAIRN_TEST_N"])
                self.next(self.end)

            @step
            def end(self):
                self.later = os.environ.get("CAIRN_TEST_GREETING")

        if __name__ == "__main__":
            EnvFlow()
        """,
    )
    runner.run(flow, "run", check=True)
    run = Flow("EnvFlow").latest_run
    assert run["start"].task.data.seen == ("hi", "3")
    assert run["end"].task.data.later is None  # only the decorated step's process


WITH_FLOW = """
import os, time
from cairn import FlowSpec, current, step

MODE = os.environ["MODE"]

class WithFlow(FlowSpec):
    def act(self):
        if MODE == "fail-first" and current.retry_count == 0:
            raise RuntimeError(f"first attempt of {current.step_name}")
        if MODE == "fail":
            raise RuntimeError(f"{current.step_name} fails")
        if MODE == "hang" and current.step_name == "middle":
            time.sleep(300)

    @step
    def start(self):
        self.act()
        self.next(self.middle)

    @step
    def middle(self):
        self.act()
        self.next(self.end)

    @step
    def end(self):
        self.act()

if __name__ == "__main__":
    WithFlow()
"""


def test_run_with_applies_a_decorator_to_every_step(runner):
    flow = runner.write("with.py", WITH_FLOW)
    steps = ["start", "middle", "end"]

    runner.run(flow, "run", "--with", "retry:times=1,minutes_between_retries=0",
               env={"MODE": "fail-first"}, check=True)
    run = Flow("WithFlow")["1"]
    assert run.successful
    for name in steps:
        assert [a.status for a in run[name].task.attempts] == ["failed", "succeeded"], name

    runner.run(flow, "run", "--with", "catch", env={"MODE": "fail"}, check=True)
    run = Flow("WithFlow")["2"]
    assert run.successful
    for name in steps:
        assert run[name].task.attempts[-1].reason == f"@catch caught: RuntimeError: {name} fails"

    proc = runner.run(flow, "run", "--with", "timeout:seconds=2", env={"MODE": "hang"})
    assert proc.returncode == 1
    run = Flow("WithFlow")["3"]
    assert run["start"].task.successful
    assert run["middle"].task.attempts[0].reason.startswith("TimeoutException: step 'middle' timed out")
