"""Every shape of tests/graphs runs end to end as a real flow file, and the
client shows what the in-memory simulation of shapes.py says it must."""

from __future__ import annotations

import re

import pytest

import shapes

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("name", shapes.shape_names())
def test_shape_runs_end_to_end(runner, name):
    spec = shapes.load(name)
    sim = shapes.Simulation(spec)
    flow = runner.dir / f"{name}.py"
    flow.write_text(shapes.flow_source(spec))
    runner.run(flow, "run", check=True)

    from cairn import Flow

    run = Flow(spec["flow"]).latest_run
    assert run.successful
    # The end step's trace is the whole run: every join's inputs in split
    # order, every foreach item's index, input and foreach stack.
    assert run.data.trace == sim.trace

    ran = {s.id for s in run.steps}
    for step, expected in sim.tasks.items():
        if not expected:
            assert step not in ran, f"{step} should not have run (switch took the other case)"
            continue
        tasks = list(run[step])
        assert len(tasks) == len(expected), step
        assert sorted(t.data.trace[-1] for t in tasks) == sorted(expected), step
        for t in tasks:
            m = re.match(r"\w+\[(\d+)\]=", str(t.data.trace[-1]))
            if m:  # right after a foreach: the client knows the split index too
                assert t.index == int(m.group(1))
    for join, counts in sim.join_inputs.items():  # len(inputs) in each join task
        assert sorted(t.data.input_count for t in run[join]) == sorted(counts), join


def test_shapes_cover_the_issue():
    assert set(shapes.shape_names()) >= {
        "linear", "branch", "nested_branch", "foreach", "nested_foreach", "foreach_in_branch",
        "branch_in_foreach", "switch", "switch_in_foreach", "recursive_switch",
    }


def test_recursive_switch_loops_exactly_until_it_exits():
    sim = shapes.Simulation(shapes.load("recursive_switch"))
    assert sim.counts()["work"] == shapes.LOOPS
    assert sim.trace == ["start"] + ["work", "check"] * shapes.LOOPS + ["end"]
