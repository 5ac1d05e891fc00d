"""A malformed flow is rejected by `check` and by `run` before anything runs:
every problem listed as file:line: step 'name': ..., exit status 1, and
nothing written (no .cairn folder, no run).

Each flow marks the line the problem must be reported at with `# <-`."""

from __future__ import annotations

import re
import textwrap

import pytest

pytestmark = pytest.mark.e2e

HEADER = "from cairn import FlowSpec, step\n\n\n"
FOOTER = '\n\nif __name__ == "__main__":\n    {name}()\n'


def write_flow(runner, name: str, body: str):
    source = HEADER + textwrap.dedent(body).strip("\n") + FOOTER.format(name=name)
    path = runner.dir / f"{name.lower()}.py"
    path.write_text(source)
    return path


def marked_lines(path) -> list[int]:
    return [i for i, line in enumerate(path.read_text().splitlines(), 1) if "# <-" in line]


def rejected(runner, path) -> str:
    """Runs check and run; both must fail the same way, writing nothing."""
    check = runner.run(path, "check")
    assert check.returncode == 1, check.stdout + check.stderr
    assert not runner.root.exists(), "check must not create a datastore"
    run = runner.run(path, "run")
    assert run.returncode == 1, run.stdout + run.stderr
    assert not runner.root.exists(), "a flow that fails validation must not create a run"
    assert "starting" not in run.stdout
    assert check.stderr.startswith("Validity checker found an issue")
    assert run.stderr == check.stderr
    return check.stderr


def problem_lines(stderr: str, path) -> list[tuple[int, str, str]]:
    """(line, step or flow, message) of each reported problem."""
    pattern = re.compile(rf"{re.escape(str(path))}:(\d+): (?:step|flow) '(\w+)': (.*)$", re.MULTILINE)
    return [(int(m.group(1)), m.group(2), m.group(3)) for m in pattern.finditer(stderr)]


def assert_problem(runner, name: str, body: str, step: str, fragment: str) -> str:
    path = write_flow(runner, name, body)
    stderr = rejected(runner, path)
    problems = problem_lines(stderr, path)
    (line,) = marked_lines(path)
    matches = [p for p in problems if p[1] == step and fragment in p[2]]
    assert matches, f"no problem for {step!r} containing {fragment!r} in:\n{stderr}"
    assert matches[0][0] == line, f"reported at line {matches[0][0]}, expected {line}:\n{stderr}"
    return stderr


def test_no_start_step(runner):
    assert_problem(runner, "NoStartFlow", """
        class NoStartFlow(FlowSpec):  # <-
            @step
            def begin(self):
                self.next(self.end)

            @step
            def end(self):
                pass
        """, "NoStartFlow", "no start step")


def test_no_end_step(runner):
    assert_problem(runner, "NoEndFlow", """
        class NoEndFlow(FlowSpec):  # <-
            @step
            def start(self):
                self.next(self.finish)

            @step
            def finish(self):
                self.next(self.start)
        """, "NoEndFlow", "no end step")


def test_unreachable_step(runner):
    assert_problem(runner, "UnreachableFlow", """
        class UnreachableFlow(FlowSpec):
            @step
            def start(self):
                self.next(self.end)

            @step
            def lonely(self):  # <-
                self.next(self.end)

            @step
            def end(self):
                pass
        """, "lonely", "not reachable")


def test_next_to_something_that_is_not_a_step(runner):
    assert_problem(runner, "NotAStepFlow", """
        class NotAStepFlow(FlowSpec):
            @step
            def start(self):
                self.next(self.helper)  # <-

            def helper(self):
                pass

            @step
            def end(self):
                pass
        """, "start", "'helper', which is not a step")


def test_next_to_a_name_that_does_not_exist(runner):
    assert_problem(runner, "TypoFlow", """
        class TypoFlow(FlowSpec):
            @step
            def start(self):
                x = 1
                self.next(self.ned)  # <-

            @step
            def end(self):
                pass
        """, "start", "'ned', which is not a step")


def test_step_without_next(runner):
    assert_problem(runner, "NoNextFlow", """
        class NoNextFlow(FlowSpec):
            @step
            def start(self):
                self.next(self.middle)

            @step
            def middle(self):  # <-
                self.x = 1

            @step
            def end(self):
                pass
        """, "middle", "no self.next")


def test_join_that_misses_a_branch(runner):
    assert_problem(runner, "MissedBranchFlow", """
        class MissedBranchFlow(FlowSpec):
            @step
            def start(self):
                self.next(self.a, self.b, self.c)

            @step
            def a(self):
                self.next(self.join)

            @step
            def b(self):
                self.next(self.join)

            @step
            def c(self):
                self.next(self.end)

            @step
            def join(self, inputs):  # <-
                self.next(self.end)

            @step
            def end(self):
                pass
        """, "join", "joins only some branches of 'start': 'c'")


def test_join_of_two_different_splits(runner):
    assert_problem(runner, "CrossJoinFlow", """
        class CrossJoinFlow(FlowSpec):
            @step
            def start(self):
                self.next(self.a, self.b)

            @step
            def a(self):
                self.next(self.a1, self.a2)

            @step
            def a1(self):
                self.next(self.join)

            @step
            def a2(self):
                self.next(self.join)

            @step
            def b(self):
                self.next(self.join)

            @step
            def join(self, inputs):  # <-
                self.next(self.end)

            @step
            def end(self):
                pass
        """, "join", "joins steps from different splits")


def test_foreach_without_join(runner):
    assert_problem(runner, "NoJoinFlow", """
        class NoJoinFlow(FlowSpec):
            @step
            def start(self):
                self.items = [1, 2]
                self.next(self.work, foreach="items")  # <-

            @step
            def work(self):
                self.next(self.end)

            @step
            def end(self):
                pass
        """, "start", "foreach without a join")


def test_join_without_split(runner):
    assert_problem(runner, "LonelyJoinFlow", """
        class LonelyJoinFlow(FlowSpec):
            @step
            def start(self):
                self.next(self.join)

            @step
            def join(self, inputs):  # <-
                self.next(self.end)

            @step
            def end(self):
                pass
        """, "join", "no split")


def test_cycle_that_is_not_a_switch_loop(runner):
    assert_problem(runner, "CycleFlow", """
        class CycleFlow(FlowSpec):
            @step
            def start(self):
                self.next(self.a)

            @step
            def a(self):
                self.next(self.b)

            @step
            def b(self):
                self.next(self.a)  # <-

            @step
            def end(self):
                pass
        """, "b", "a loop (a -> b -> a) that does not go through a switch")


def test_wrong_signature(runner):
    assert_problem(runner, "SignatureFlow", """
        class SignatureFlow(FlowSpec):
            @step
            def start(self, alpha, beta):  # <-
                self.next(self.end)

            @step
            def end(self):
                pass
        """, "start", "def name(self)")


def test_step_on_a_staticmethod(runner):
    assert_problem(runner, "StaticFlow", """
        class StaticFlow(FlowSpec):
            @step
            def start(self):
                self.next(self.helper)

            @step
            @staticmethod
            def helper():  # <-
                pass

            @step
            def end(self):
                pass
        """, "helper", "not to a method")


def test_step_on_something_that_is_not_a_function(runner):
    stderr = assert_problem(runner, "ValueFlow", """
        class ValueFlow(FlowSpec):
            @step
            def start(self):
                self.next(self.end)

            threshold = step(0.5)  # <-

            @step
            def end(self):
                pass
        """, "threshold", "not to a method")
    assert stderr.count("threshold") == 1, stderr


def test_every_problem_is_listed_in_line_order(runner):
    path = write_flow(runner, "ManyFlow", """
        class ManyFlow(FlowSpec):
            @step
            def start(self):
                self.next(self.a)

            @step
            def a(self, inputs):  # <-
                self.next(self.b)

            @step
            def b(self):
                self.next(self.c)

            @step
            def c(self):
                self.next(self.b)  # <-

            @step
            def orphan(self):  # <-
                self.next(self.end)

            @step
            def badsig(self, x, y):  # <-
                self.next(self.end)

            weight = step(3)  # <-

            @step
            def end(self):
                pass
        """)
    stderr = rejected(runner, path)
    problems = problem_lines(stderr, path)
    assert [p[0] for p in problems] == sorted(p[0] for p in problems)
    reported = {(line, step) for line, step, _ in problems}
    marked = marked_lines(path)
    assert reported >= set(zip(marked, ["a", "c", "orphan", "badsig", "weight"])), stderr


def test_a_flow_from_a_module_not_in_sys_modules_still_builds_its_graph(tmp_path):
    """runpy under another name leaves the class's module unimportable:
    its source is still found through its methods."""
    import runpy

    from cairn.graph import spec_for

    path = tmp_path / "loose.py"
    path.write_text(
        "from cairn import FlowSpec, step\n"
        "\n"
        "class LooseFlow(FlowSpec):\n"
        "    @step\n"
        "    def start(self):\n"
        "        self.next(self.end)\n"
        "\n"
        "    @step\n"
        "    def end(self):\n"
        "        pass\n"
    )
    flow_cls = runpy.run_path(str(path), run_name="not_a_module")["LooseFlow"]
    spec = spec_for(flow_cls)
    assert [s["name"] for s in spec["steps"]] == ["start", "end"]
    assert spec["file"] == str(path) and spec["line"] == 3
