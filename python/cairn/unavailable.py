"""Metaflow names that mean nothing on cairn: they import (so a flow file or
notebook that imports them still loads) and raise a CairnException that says
what to use instead as soon as they are used."""

from __future__ import annotations

from typing import Any, NoReturn

from .unsupported import NotAvailableError


class Unavailable:
    """Stands for a Metaflow name; calling it, or any attribute of it, raises."""

    def __init__(self, name: str, reason: str):
        self._name = name
        self._reason = reason

    def _refuse(self) -> NoReturn:
        raise NotAvailableError(f"{self._name}: {self._reason}")

    def __call__(self, *args: Any, **kwargs: Any) -> NoReturn:
        self._refuse()

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        self._refuse()

    def __repr__(self) -> str:
        return f"<{self._name}: not available in cairn>"


_DEPLOY = ("cairn runs flows locally and deploys to no production scheduler; run a flow from Python "
           "with Runner (or NBRunner), and on a schedule with cron and `python flow.py run`")
Deployer = Unavailable("Deployer", _DEPLOY)
DeployedFlow = Unavailable("DeployedFlow", _DEPLOY)
NBDeployer = Unavailable("NBDeployer", _DEPLOY)
