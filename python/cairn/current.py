"""`current`: what a running task knows about itself (Metaflow's `current`)."""

from __future__ import annotations

from typing import Any


class Parallel:
    def __init__(self, main_ip: str = "127.0.0.1", num_nodes: int = 1, node_index: int = 0,
                 control_task_id: str | None = None):
        self.main_ip = main_ip
        self.num_nodes = num_nodes
        self.node_index = node_index
        self.control_task_id = control_task_id

    def __repr__(self) -> str:
        return f"Parallel(node_index={self.node_index}, num_nodes={self.num_nodes}, main_ip={self.main_ip!r})"


class Current:
    def __init__(self) -> None:
        self._is_running = False
        self._info: dict[str, Any] = {}

    def _set(self, **info: Any) -> None:
        self._info = info
        self._is_running = True

    def _get(self, name: str) -> Any:
        return self._info.get(name)

    @property
    def is_running_flow(self) -> bool:
        return self._is_running

    flow_name = property(lambda self: self._get("flow_name"))
    run_id = property(lambda self: self._get("run_id"))
    step_name = property(lambda self: self._get("step_name"))
    task_id = property(lambda self: self._get("task_id"))
    retry_count = property(lambda self: self._get("retry_count") or 0)
    origin_run_id = property(lambda self: self._get("origin_run_id"))
    username = property(lambda self: self._get("username"))
    namespace = property(lambda self: f"user:{self._get('username')}")
    tags = property(lambda self: list(self._get("tags") or []))
    index = property(lambda self: self._get("index"))
    parameter_names = property(lambda self: list(self._get("parameter_names") or []))

    # @project (None without it), as in Metaflow.
    def _project(self, key: str) -> Any:
        return (self._get("project") or {}).get(key)

    project_name = property(lambda self: self._project("project_name"))
    branch_name = property(lambda self: self._project("branch_name"))
    project_flow_name = property(lambda self: self._project("project_flow_name"))
    is_user_branch = property(lambda self: self._project("is_user_branch"))
    is_production = property(lambda self: self._project("is_production"))

    @property
    def pathspec(self) -> str | None:
        if not self._is_running:
            return None
        return f"{self.flow_name}/{self.run_id}/{self.step_name}/{self.task_id}"

    @property
    def card(self) -> Any:
        """The running step's cards (cairn.cards): append, extend, clear, [id], refresh."""
        from .cards.runtime import current_card

        return current_card()

    @property
    def parallel(self) -> Parallel:
        """The task's place in its @parallel gang (node 0 of 1 outside one)."""
        return Parallel(**(self._get("parallel") or {}))

    def __repr__(self) -> str:
        if not self._is_running:
            return "current(not in a running task)"
        return f"current({self.pathspec}, retry_count={self.retry_count})"


current = Current()
