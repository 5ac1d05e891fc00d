"""The per-task path does only what the step uses (docs/performance.md):
the worker holds no module the flow does not need, decorators are resolved
once per run rather than in each forked task, and steps without @card or
user decorators still behave as before."""

from __future__ import annotations

import subprocess
import sys

import pytest
from cairn import Flow

pytestmark = pytest.mark.e2e

MODULES_FLOW = """
import os
import sys

from cairn import FlowSpec, step


class ModulesFlow(FlowSpec):
    @step
    def start(self):
        self.items = [1, 2, 3]
        self.next(self.body, foreach="items")

    @step
    def body(self):
        self.loaded = sorted(m for m in sys.modules if m.startswith("cairn") or m in (
            "hashlib", "threading", "random", "tempfile", "platform"))
        self.next(self.join)

    @step
    def join(self, inputs):
        self.loaded = inputs[0].loaded
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ModulesFlow()
"""


def test_a_forked_task_holds_only_the_modules_its_flow_uses(runner):
    flow = runner.write("modules_flow.py", MODULES_FLOW)
    runner.run(flow, "run", check=True)
    loaded = set(Flow("ModulesFlow").latest_run.data.loaded)
    assert {"cairn.runtime.task", "cairn.runtime.worker"} <= loaded  # the list is real
    # Neither the client, cards, the runner nor the timeout/user-decorator
    # wrapper is loaded by a flow that uses none of them; nor are the modules
    # whose at-fork hooks or shared libraries cost every forked task.
    unused = {"cairn.client", "cairn.client.task", "cairn.cards.runtime", "cairn.cards.client",
              "cairn.cards.components", "cairn.runner", "cairn.nbrun", "cairn.runtime.multicore", "cairn.runtime.step_call",
              "hashlib", "threading", "random", "tempfile", "platform"}
    # Less what this interpreter loads before any cairn code (a site .pth
    # file may import certifi, and with it tempfile, random and threading).
    startup = subprocess.run([sys.executable, "-c", "import sys; print(' '.join(sys.modules))"],
                             capture_output=True, text=True, check=True, env=runner.env).stdout.split()
    assert loaded.isdisjoint(unused - set(startup)), sorted(loaded & unused - set(startup))


CARDS_FLOW = """
from cairn import FlowSpec, card, current, step


class CardHopFlow(FlowSpec):
    @card
    @step
    def start(self):
        self.x = 1
        self.next(self.middle)

    @step
    def middle(self):
        from cairn.cards import Markdown

        current.card.append(Markdown("dropped"))  # no @card here: warned, not failed
        self.y = 2
        self.next(self.end)

    @card(type="blank")
    @step
    def end(self):
        from cairn.cards import Markdown

        current.card.append(Markdown("kept"))
"""


def test_a_step_without_card_keeps_none_it_inherits_and_cards_still_work_after_it(runner):
    flow = runner.write("card_hop.py", CARDS_FLOW + '\nif __name__ == "__main__":\n    CardHopFlow()\n')
    proc = runner.run(flow, "run", check=True)
    assert "this step has no @card; the component is dropped" in proc.stderr
    from cairn.cards import get_cards

    run = Flow("CardHopFlow").latest_run
    assert [c.type for c in get_cards(run["start"].task)] == ["default"]
    assert list(get_cards(run["middle"].task)) == []
    assert not any(a.id.startswith("_cairn_card") for a in run["middle"].task)
    assert "kept" in get_cards(run["end"].task)[0].html


NO_NEXT_FLOW = """
from cairn import FlowSpec, step, timeout


class NoNextFlow(FlowSpec):
    go = False

    @step
    def start(self):
        if self.go:
            self.next(self.middle)

    @timeout(seconds=30)
    @step
    def middle(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    NoNextFlow()
"""


@pytest.mark.parametrize("step_decorator", ["", "@timeout(seconds=30)"])
def test_a_step_that_returns_without_self_next_fails_with_a_clear_error(runner, step_decorator):
    """With or without @timeout (the two ways a step's body is called), the
    step's transition is never taken for it."""
    source = NO_NEXT_FLOW.replace("    @step\n    def start", f"    {step_decorator}\n    @step\n    def start", 1)
    flow = runner.write("no_next.py", source)
    proc = runner.run(flow, "run")
    assert proc.returncode == 1
    assert "step 'start' finished without calling self.next(...)" in proc.stderr
    assert "Traceback" not in proc.stderr.split("[1/start/1]")[0]
    assert [s.id for s in Flow("NoNextFlow").latest_run] == ["start"]


ONCE_FLOW = """
import os

from cairn import FlowSpec, StepDecorator, step

LOG = os.environ["RESOLVE_LOG"]


class counted(StepDecorator):
    name = "counted"

    def resolved(self):
        with open(LOG, "a") as f:
            f.write(f"{os.getpid()}\\n")
        return self


class OnceFlow(FlowSpec):
    @step
    def start(self):
        self.items = list(range(6))
        self.next(self.body, foreach="items")

    @counted()
    @step
    def body(self):
        self.pid = os.getpid()
        self.next(self.join)

    @step
    def join(self, inputs):
        self.pids = [i.pid for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    OnceFlow()
"""


def test_decorators_are_resolved_once_per_run_not_in_each_task(runner):
    flow = runner.write("once_flow.py", ONCE_FLOW)
    log = runner.dir / "resolved.log"
    runner.run(flow, "run", check=True, env={"RESOLVE_LOG": str(log)})
    task_pids = set(Flow("OnceFlow").latest_run.data.pids)
    resolved_in = [int(line) for line in log.read_text().split()]
    assert len(task_pids) == 6
    assert task_pids.isdisjoint(resolved_in)  # no forked task resolved its decorators
    assert len(set(resolved_in)) == 2  # the run (for its GraphSpec) and its worker, once each


def test_the_spawn_launcher_still_resolves_in_each_task(runner):
    """A fresh interpreter per task has no worker to do it: each task does."""
    flow = runner.write("once_flow.py", ONCE_FLOW)
    log = runner.dir / "resolved.log"
    runner.run(flow, "run", "--launcher", "spawn", check=True, env={"RESOLVE_LOG": str(log)})
    task_pids = set(Flow("OnceFlow").latest_run.data.pids)
    assert task_pids <= {int(line) for line in log.read_text().split()}


def test_lazy_names_of_the_package_resolve_and_are_listed():
    code = ("import sys, cairn\n"
            "assert 'cairn.client' not in sys.modules and 'cairn.runner' not in sys.modules\n"
            "names = {n: getattr(cairn, n) for n in cairn.__all__}\n"
            "assert names['Flow'].__module__ == 'cairn.client.run' and names['Runner'].__module__ == 'cairn.runner'\n"
            "assert set(cairn.__all__) <= set(dir(cairn))\n"
            "from cairn import *\n"
            "from cairn.cards import Markdown, get_cards\n"
            "print('ok')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.stdout.strip() == "ok", proc.stderr
    missing = subprocess.run([sys.executable, "-c", "import cairn; cairn.NoSuchName"],
                             capture_output=True, text=True, check=False)
    assert "module 'cairn' has no attribute 'NoSuchName'" in missing.stderr
