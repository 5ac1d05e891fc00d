"""@parallel and self.next(self.step, num_parallel=N), as in Metaflow: the
@parallel step runs as N tasks started together (a gang: the engine starts
all or none, and when one fails it kills the others and the step fails or
retries as a whole). Node 0 is the control task, the others are workers;
`current.parallel` gives node_index, num_nodes, main_ip (127.0.0.1 here)
and control_task_id. The step after it must be a join of all N."""

from __future__ import annotations

from typing import Any, ClassVar

from .decorators import StepDecorator

# The foreach "variable" of a num_parallel split (Metaflow's name for it):
# no artifact has it, so self.input is None in a @parallel step.
PARALLEL_VAR = "_parallel_ubf_iter"


class parallel(StepDecorator):  # noqa: N801 - Metaflow's name
    """Marks a step that runs as a gang of num_parallel tasks."""

    name = "parallel"
    defaults: ClassVar[dict[str, Any]] = {}


def check_parallel(steps: list[Any]) -> None:
    """Python-side graph checks: a num_parallel split must lead to a
    @parallel step, which must go straight to a join; a @parallel step must
    be reached by num_parallel."""
    by_name = {s.name: s for s in steps}
    parallel_targets = {s.next[0] for s in steps if s.parallel and s.next}
    for s in steps:
        is_parallel = any(d.name == "parallel" for d in s.decorators)
        if s.parallel and s.next and s.next[0] in by_name:
            target = by_name[s.next[0]]
            if not any(d.name == "parallel" for d in target.decorators):
                s.problems.append(f"num_parallel runs '{target.name}' as a gang, so it needs "
                                  f"@parallel; add @parallel above its @step")
        if is_parallel:
            if s.name not in parallel_targets:
                s.problems.append("@parallel steps are reached by self.next(self.<step>, "
                                  "num_parallel=N); no step does that for this one")
            nxt = by_name.get(s.next[0]) if s.transition == "linear" and s.next else None
            if nxt is None or not nxt.is_join:
                s.problems.append("a @parallel step must be followed by a join step "
                                  "(def join(self, inputs)) that gathers its nodes")


def parallel_info(frames: list[Any], task_id: Any) -> dict[str, Any] | None:
    """current.parallel for a task inside a gang (None outside one)."""
    for frame in reversed(frames):
        if frame.get("var") == PARALLEL_VAR:
            index, width = int(frame["index"]), int(frame["width"])
            return {"main_ip": "127.0.0.1", "num_nodes": width, "node_index": index,
                    # The engine creates a gang's tasks with consecutive ids, node 0 first.
                    "control_task_id": str(int(task_id) - index)}
    return None


__all__ = ["parallel"]
