"""@project(name=...): runs of the flow belong to a project and a branch,
chosen with the top-level options --branch and --production, as in
Metaflow: `user.<username>` by default, `test.<branch>` with --branch,
`prod` with --production (`prod.<branch>` with both). The run gets the
system tags `project:<name>` and `project_branch:<branch>`, and
`current.project_name`, `branch_name`, `project_flow_name`,
`is_user_branch` and `is_production` say where it belongs."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from .errors import CairnException
from .flow_decorators import FlowDecorator, flow_decorator

_PROJECT_NAME = re.compile(r"^[a-z0-9_]+$")
_BRANCH_NAME = re.compile(r"^[a-z0-9_.-]+$")
_MAX_NAME = 128

# The branch options of this process's command line.
_SELECTED: dict[str, Any] = {"branch": None, "production": False}


class project(FlowDecorator):  # noqa: N801 - Metaflow's name
    name = "project"
    defaults: ClassVar[dict[str, Any]] = {"name": None, "branch": None, "production": False}

    def __init__(self, **attributes: Any):
        super().__init__(**attributes)
        name = self.attributes["name"]
        if name is None:
            raise CairnException("@project needs a name: @project(name='my_project')")
        if isinstance(name, str):
            _check(name, _PROJECT_NAME, "project name", "lowercase letters, digits and underscores")


def _check(value: str, pattern: re.Pattern[str], what: str, allowed: str) -> None:
    if not pattern.match(value) or len(value) > _MAX_NAME:
        raise CairnException(f"@project: {what} {value!r} may only contain {allowed} "
                             f"(at most {_MAX_NAME} characters)")


def select_branch(branch: str | None, production: bool) -> None:
    """Records --branch / --production for this process."""
    _SELECTED["branch"] = branch
    _SELECTED["production"] = bool(production)


def project_info(flow_cls: type, user: str) -> dict[str, Any] | None:
    """The run's project and branch (None without @project)."""
    deco = flow_decorator(flow_cls, "project")
    if deco is None:
        if _SELECTED["branch"] is not None or _SELECTED["production"]:
            option = "--production" if _SELECTED["production"] else "--branch"
            raise CairnException(f"{option} applies to flows with @project; {flow_cls.__name__} has none")
        return None
    name = str(deco.value("name"))
    _check(name, _PROJECT_NAME, "project name", "lowercase letters, digits and underscores")
    branch = _SELECTED["branch"] or deco.value("branch")
    production = _SELECTED["production"] or bool(deco.value("production"))
    if branch:
        _check(str(branch), _BRANCH_NAME, "branch", "lowercase letters, digits, '_', '-' and '.'")
        branch_name = f"prod.{branch}" if production else f"test.{branch}"
    elif production:
        branch_name = "prod"
    else:
        branch_name = f"user.{_user_token(user)}"
    return {
        "project_name": name,
        "branch_name": branch_name,
        "project_flow_name": f"{name}.{branch_name}.{flow_cls.__name__}",
        "is_user_branch": branch_name.startswith("user."),
        "is_production": production,
    }


def _user_token(user: str) -> str:
    return re.sub(r"[^a-z0-9_.-]", "_", user.lower()) or "unknown"


def project_tags(info: dict[str, Any] | None) -> list[str]:
    if not info:
        return []
    return [f"project:{info['project_name']}", f"project_branch:{info['branch_name']}"]


__all__ = ["project"]
