"""User-defined decorators and mutators, from Metaflow's "Composing Flows
with Custom Decorators" pages: wrapping a step, skipping it (`yield {}`),
replacing it (`yield fn`), the class form, StepMutator and FlowMutator
adding decorators, and `--with module.name` / a StepDecorator subclass."""

from __future__ import annotations

from cairn import Flow

DECOS = """
from cairn import (FlowMutator, StepDecorator, StepMutator, UserStepDecorator, current,
                   user_step_decorator)


@user_step_decorator
def my_profile(step_name, flow, inputs=None, attributes=None):
    print(f"profile: before {step_name}")
    flow.scratch = "temporary"
    yield
    del flow.scratch
    print(f"profile: after {step_name}")


@user_step_decorator
def skip_with(step_name, flow, inputs=None, attributes=None):
    setattr(flow, attributes["artifact"], attributes["value"])
    yield {}


@user_step_decorator
def fallback(step_name, flow, inputs=None, attributes=None):
    def _fallback_step(self):
        setattr(self, attributes.get("indicator", "failed"), True)

    if current.retry_count == 0:
        yield
    else:
        yield _fallback_step


class counted(UserStepDecorator):
    def init(self, *args, **kwargs):
        self.label = kwargs.get("label", "none")

    def pre_step(self, step_name, flow, inputs=None):
        flow.counted_label = self.label

    def post_step(self, step_name, flow, exception=None):
        print(f"counted: {step_name} exception={type(exception).__name__ if exception else None}")


class with_retry_and_fallback(StepMutator):
    def mutate(self, mutable_step):
        mutable_step.add_decorator("retry", deco_kwargs={"times": 1, "minutes_between_retries": 0},
                                   duplicates=mutable_step.IGNORE)
        mutable_step.add_decorator(fallback, deco_kwargs={"indicator": "used_fallback"},
                                   duplicates=mutable_step.IGNORE)


class profiled_flow(FlowMutator):
    def init(self, *args, **kwargs):
        self.skip = kwargs.get("skip", ())

    def mutate(self, mutable_flow):
        for name, step in mutable_flow.steps:
            if name not in self.skip:
                step.add_decorator(my_profile, duplicates=step.IGNORE)


class marker(StepDecorator):
    name = "marker"
    defaults = {"value": "unset"}

    def task_env(self):
        return {"MARKER": str(self.attributes["value"])}
"""

FLOW = """
import os
from cairn import FlowSpec, step
from decos import counted, fallback, profiled_flow, skip_with, with_retry_and_fallback


@profiled_flow(skip=["end"])
class DecoFlow(FlowSpec):
    @step
    def start(self):
        self.saw_scratch = self.scratch
        self.marker = os.environ.get("MARKER")
        self.next(self.skipped)

    @skip_with(artifact="result", value=42)
    @step
    def skipped(self):
        raise AssertionError("the decorator skips this body")
        self.next(self.flaky)

    @with_retry_and_fallback
    @step
    def flaky(self):
        raise RuntimeError("always fails")
        self.next(self.end)

    @counted(label="x")
    @step
    def end(self):
        self.bare_counted = self.counted_label

if __name__ == "__main__":
    DecoFlow()
"""


def test_user_step_decorators_wrap_skip_and_replace(runner):
    runner.write("decos.py", DECOS)
    flow = runner.write("deco_flow.py", FLOW)
    proc = runner.run(flow, "run", "--with", "marker:value=m1", check=True)
    run = Flow("DecoFlow").latest_run
    start = run["start"].task
    assert start.data.saw_scratch == "temporary"  # set before yield...
    assert "scratch" not in [a.id for a in start.artifacts]  # ...and deleted after it: not stored
    assert start.data.marker == "m1"  # a StepDecorator subclass, by name with --with
    assert "profile: before start" in proc.stdout and "profile: after start" in proc.stdout
    assert "profile: before end" not in proc.stdout  # the FlowMutator skipped end
    assert run["skipped"].task.data.result == 42  # yield {} skipped the body
    flaky = run["flaky"].task
    assert [a.status for a in flaky.attempts] == ["failed", "succeeded"]  # retry added by the mutator
    assert flaky.data.used_fallback is True  # the fallback replaced the body on the retry
    assert run["end"].task.data.bare_counted == "x"
    assert "counted: end exception=None" in proc.stdout


def test_with_a_decorator_from_a_module(runner):
    runner.write("decos.py", DECOS)
    flow = runner.flow("plain_flow.py")

    proc = runner.run(flow, "run", "--with", "decos.counted:label=cli", check=True)
    assert "counted: start exception=None" in proc.stdout and "counted: end exception=None" in proc.stdout
    # A StepMutator by --with: it adds @retry to every step before the graph is built.
    proc = runner.python("""
        import json, sys
        sys.argv = ["plain_flow.py"]
        from cairn.graph import spec_for
        from cairn.config import read_configs
        from plain_flow import PlainFlow
        read_configs(PlainFlow)
        spec = spec_for(PlainFlow, ["decos.with_retry_and_fallback"])
        print(json.dumps({s["name"]: s["options"].get("retries") for s in spec["steps"]}))
        """)
    assert proc.stdout.strip() == '{"start": 1, "end": 1}', proc.stderr
    proc = runner.run(flow, "run", "--with", "nosuchmodule.deco")
    assert proc.returncode == 1
    assert "--with nosuchmodule.deco: cannot import deco from nosuchmodule" in proc.stderr
    assert "Traceback" not in proc.stderr
