"""@exit_hook (Metaflow's "Dealing with Failures") and the deploy-time
decorators @schedule, @trigger, @trigger_on_finish, which cairn records
with each run and shows, but does not act on until a flow is deployed."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

from cairn import Flow, _core

HOOKS = """
from cairn import FlowSpec, Parameter, exit_hook, step


def success_print():
    print("hook: flow completed successfully")


def failure_print(run):
    print(f"hook: run {run.pathspec} failed")
    for step in run:
        for task in step:
            if not task.successful:
                print(f"hook: failed task {task.pathspec}")


def broken_hook():
    raise RuntimeError("the hook itself fails")


@exit_hook(on_error=[failure_print, broken_hook], on_success=[success_print, broken_hook])
class ExitHookFlow(FlowSpec):
    should_fail = Parameter(name="should-fail", default=False)

    @step
    def start(self):
        if self.should_fail:
            raise Exception("failing as expected")
        self.next(self.end)

    @step
    def end(self):
        print("Done!")


if __name__ == "__main__":
    ExitHookFlow()
"""

INTERRUPTED = """
import threading

from cairn import FlowSpec, exit_hook, step


def failure_note(run):
    print(f"hook: on_error {run.pathspec} successful={run.successful}", flush=True)


def success_note():
    print("hook: on_success", flush=True)


@exit_hook(on_error=[failure_note], on_success=[success_note])
class InterruptedFlow(FlowSpec):
    @step
    def start(self):
        print("waiting for Ctrl-C", flush=True)
        threading.Event().wait()
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    InterruptedFlow()
"""

DEPLOY = """
from cairn import FlowSpec, schedule, step, trigger, trigger_on_finish


@trigger_on_finish(flow="UpstreamFlow")
@trigger(event="data_updated")
@schedule(hourly=True)
class DeployFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    DeployFlow()
"""


def test_exit_hooks_run_after_the_run_and_never_change_its_status(runner):
    flow = runner.write("exit_hook_flow.py", HOOKS)
    proc = runner.run(flow, "run")
    assert proc.returncode == 0, proc.stderr
    done = proc.stdout.index("Done!")
    assert proc.stdout.index("hook: flow completed successfully") > done
    assert "Exit hook broken_hook failed (the run's status is unchanged)" in proc.stderr
    assert "RuntimeError: the hook itself fails" in proc.stderr
    assert "hook: run" not in proc.stdout
    assert Flow("ExitHookFlow").latest_run.successful

    proc = runner.run(flow, "run", "--should-fail", "true")
    assert proc.returncode == 1
    run_id = Flow("ExitHookFlow").latest_run.id
    assert f"hook: run ExitHookFlow/{run_id} failed" in proc.stdout
    assert f"hook: failed task ExitHookFlow/{run_id}/start/" in proc.stdout
    assert "flow completed successfully" not in proc.stdout


def test_ctrl_c_runs_the_on_error_hooks_of_the_failed_run(runner):
    """Metaflow's exit hooks run whatever the outcome: an interrupted run
    failed, so its on_error hooks run, with its Run, before the exit (130)."""
    flow = runner.write("interrupted.py", INTERRUPTED)
    proc = subprocess.Popen([sys.executable, str(flow), "run"], cwd=runner.dir, env=runner.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # the step prints once it runs, then blocks
            if "waiting for Ctrl-C" in line:
                break
        else:
            raise AssertionError(f"the step never started: {proc.stderr.read() if proc.stderr else ''}")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "hook: on_error InterruptedFlow/1 successful=False" in out
    assert "hook: on_success" not in out
    assert Flow("InterruptedFlow")["1"].status == "failed"


def test_deploy_time_decorators_are_recorded_and_shown(runner):
    flow = runner.write("deploy_flow.py", DEPLOY)
    runner.run(flow, "run", check=True)
    run_id = int(Flow("DeployFlow").latest_run.id)
    graph = json.loads(_core.Datastore(str(runner.root), readonly=True).get_run("DeployFlow", run_id).graph_json)
    assert graph["deploy"]["schedule"]["hourly"] is True
    assert graph["deploy"]["trigger"]["event"] == "data_updated"
    assert graph["deploy"]["trigger_on_finish"]["flow"] == "UpstreamFlow"
    shown = runner.run(flow, "show", check=True).stdout
    assert "@schedule(hourly=True): recorded with each run; takes effect when the flow is " \
           "deployed to a scheduler, which cairn does not do yet" in shown
    assert "@trigger(event='data_updated')" in shown
