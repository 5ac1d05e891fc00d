"""Metaflow decorators that cairn does not provide yet. They import (a flow
written for Metaflow loads) and fail with a clear error, saying what to use
instead, when a command builds the flow's graph; `disabled=True` makes them
no-ops, as in Metaflow."""

from __future__ import annotations

from typing import Any

from .decorators import StepDecorator
from .errors import CairnException
from .flow_decorators import FlowDecorator

_ENVIRONMENT_HINT = (
    "cairn runs every task in the Python environment that runs the flow: install the packages "
    "there (pip install ...) and remove the decorator, or pass disabled=True"
)


class NotAvailableError(CairnException):
    headline = "Not available in cairn"


class _Unavailable:
    hint = ""

    def __init__(self, **attributes: Any):
        self.attributes = dict(attributes)  # any arguments: the error is about the decorator

    def fail(self, where: str) -> None:
        if not self.attributes.get("disabled"):
            raise NotAvailableError(f"{where}@{self.name} is not available in cairn: {self.hint}")


class _UnavailableStep(_Unavailable, StepDecorator):
    def graph_options(self) -> dict[str, Any]:
        self.fail("")
        return {}


class _UnavailableFlow(_Unavailable, FlowDecorator):
    pass


class pypi(_UnavailableStep):  # noqa: N801 - Metaflow's names
    name = "pypi"
    hint = _ENVIRONMENT_HINT


class conda(_UnavailableStep):  # noqa: N801
    name = "conda"
    hint = _ENVIRONMENT_HINT


class pytorch_parallel(_UnavailableStep):  # noqa: N801
    name = "pytorch_parallel"
    hint = ("use @parallel and set torch.distributed up from current.parallel (MASTER_ADDR is "
            "current.parallel.main_ip, RANK its node_index, WORLD_SIZE its num_nodes)")


class pypi_base(_UnavailableFlow):  # noqa: N801
    name = "pypi_base"
    hint = _ENVIRONMENT_HINT


class conda_base(_UnavailableFlow):  # noqa: N801
    name = "conda_base"
    hint = _ENVIRONMENT_HINT


def check_flow(flow_cls: type) -> None:
    """Fails if the flow uses an unavailable flow decorator."""
    from .flow_decorators import flow_decorator

    for name in ("pypi_base", "conda_base"):
        deco = flow_decorator(flow_cls, name)
        if deco is not None:
            deco.fail(f"flow {flow_cls.__name__}: ")  # type: ignore[attr-defined]


__all__ = ["conda", "conda_base", "pypi", "pypi_base", "pytorch_parallel"]
