"""Config parsers Metaflow exports by name: `Config("cfg", default="cfg.yaml",
parser=yaml_parser)`, and the three that read a project's dependency file
into `{"packages": {name: version spec}, "python": spec or None}`, the
arguments of `@pypi_base`/`@conda_base`: `Config("deps",
default="requirements.txt", parser=requirements_txt_parser)`."""

from __future__ import annotations

import re
from typing import Any

from .errors import CairnException


class ParserValueError(CairnException):
    """A dependency file a parser cannot read as Metaflow does."""

    headline = "Value error"


def yaml_parser(text: str) -> Any:
    """The config text read as YAML (needs PyYAML, imported only when used)."""
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError:
        raise CairnException("yaml_parser needs PyYAML: pip install pyyaml") from None
    return yaml.safe_load(text)


_INLINE_COMMENT = re.compile(r"\s+#.*$")


def requirements_txt_parser(content: str) -> dict[str, Any]:
    """A requirements.txt: each line that is not blank or a comment must be a
    PEP 508 requirement without environment markers; `python` names the
    Python version. Raises ParserValueError otherwise."""
    parsed = _empty()
    for raw in content.splitlines():
        line = _INLINE_COMMENT.sub("", raw.strip()).strip()
        if not line or line.startswith("#") or line == "-e file:.":  # Rye lock files list the project so
            continue
        _add_requirement(parsed, line)
    return parsed


def pyproject_toml_parser(content: str) -> dict[str, Any]:
    """A pyproject.toml's `[project]` table: `requires-python` and each of
    `dependencies` (PEP 621), as requirements_txt_parser reads lines."""
    try:
        import tomllib as toml  # Python 3.11+
    except ImportError:
        try:
            import tomli as toml  # type: ignore[no-redef]
        except ImportError:
            raise CairnException("pyproject_toml_parser needs tomli before Python 3.11: pip install tomli") from None
    try:
        project = toml.loads(content).get("project", {})
    except toml.TOMLDecodeError as e:
        raise ParserValueError(f"Not valid TOML: {e}") from None
    parsed = _empty()
    requires_python = project.get("requires-python")
    if requires_python is not None:
        parsed["python"] = str(requires_python).lstrip("=").strip()
    for line in project.get("dependencies", []):
        _add_requirement(parsed, str(line).strip())
    return parsed


_CONDA_SPEC = re.compile(r"^([A-Za-z0-9_.\-]+)(\s*[=<>!~].+)?$")


def conda_environment_yml_parser(content: str) -> dict[str, Any]:
    """The `dependencies:` list of a conda environment.yml, each item a
    package with an optional version (`numpy=1.26`, `python=3.11`, `scipy`).
    Nested lists (a `pip:` subsection) are refused, as in Metaflow."""
    parsed = _empty()
    in_dependencies = False
    for raw in content.splitlines():
        line = _INLINE_COMMENT.sub("", raw.strip()).strip()
        if not line or line.startswith("#"):
            continue
        if line.lower().startswith("dependencies:"):
            in_dependencies = True
            continue
        if not in_dependencies:
            continue
        if not line.startswith("-"):
            in_dependencies = False
            continue
        item = line.lstrip("-").strip()
        if item.endswith(":"):
            raise ParserValueError(f"Unsupported subsection '{item}' in environment.yml.")
        match = _CONDA_SPEC.match(item)
        if match is None:
            raise ParserValueError(f"Line '{item}' is not a valid conda package specifier.")
        name, spec = match.group(1), (match.group(2) or "").strip()
        if spec.startswith("="):
            spec = spec.lstrip("=").strip()
        _add(parsed, name, spec, item)
    return parsed


def _empty() -> dict[str, Any]:
    return {"packages": {}, "python": None}


def _add_requirement(parsed: dict[str, Any], line: str) -> None:
    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:
        raise CairnException("reading PEP 508 requirements needs the packaging library: pip install packaging") from None
    try:
        req = Requirement(line)
    except InvalidRequirement:
        raise ParserValueError(f"Not a valid PEP 508 requirement: '{line}'") from None
    if req.marker is not None:
        raise ParserValueError(f"Environment markers (e.g. 'platform_system==\"Linux\"') are not supported: '{line}'")
    key = req.name + (f"[{','.join(sorted(req.extras))}]" if req.extras else "") + (f"@{req.url}" if req.url else "")
    _add(parsed, key if req.name.lower() != "python" else "python", str(req.specifier).lstrip(" ="), line)


def _add(parsed: dict[str, Any], name: str, spec: str, line: str) -> None:
    if name.lower() != "python":
        parsed["packages"][name] = spec
        return
    if parsed["python"] is not None and spec:
        raise ParserValueError(f"Multiple Python version specs not allowed: '{line}'")
    parsed["python"] = spec or None
