"""The package's rooms (STYLE.md §11) keep their dependencies pointing one
way, checked on the source: the client's core never imports its display,
the runtime imports neither the command line nor the client's display, no
command module imports cli/__init__.py back; and values pickled before a
module moved still load."""

from __future__ import annotations

import ast
import pickle
import sys
import types
from pathlib import Path

import cairn
import pytest
from cairn import serializers
from cairn.runtime.task import StepFailure

PACKAGE = Path(cairn.__file__).parent


def imports_of(path: Path) -> set[str]:
    """Every cairn module `path` imports, at any depth of its code (a name
    imported from a package counts as that package's submodule too)."""
    parts = ["cairn", *path.relative_to(PACKAGE).with_suffix("").parts]
    package = parts[:-1]  # an __init__.py's path parts end in "__init__", so this is its package too
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}
    return {m for m in found if m == "cairn" or m.startswith("cairn.")}


def modules_in(room: str) -> list[Path]:
    return sorted((PACKAGE / room).glob("*.py"))


def within(modules: set[str], *packages: str) -> set[str]:
    return {m for m in modules if any(m == p or m.startswith(p + ".") for p in packages)}


@pytest.mark.parametrize("path", [p for p in modules_in("client") if p.stem in ("base", "task", "run", "metadata")],
                         ids=lambda p: p.stem)
def test_the_clients_core_never_imports_its_display(path):
    assert not within(imports_of(path), "cairn.client.display", "cairn.cli")


@pytest.mark.parametrize("path", modules_in("runtime"), ids=lambda p: p.stem)
def test_the_runtime_never_imports_the_command_line_or_the_clients_display(path):
    assert not within(imports_of(path), "cairn.cli", "cairn.client.display")


@pytest.mark.parametrize("path", [p for p in modules_in("cli") if p.name != "__init__.py"], ids=lambda p: p.stem)
def test_no_command_module_imports_the_cli_package_back(path):
    imported = imports_of(path)
    assert "cairn.cli" not in imported
    assert not within(imported, "cairn.client.display") or path.stem == "inspect"  # dump lists artifacts


def test_every_command_has_its_function_in_its_module():
    from importlib import import_module

    from cairn.cli import COMMANDS

    for name, (_, module) in COMMANDS.items():
        assert callable(getattr(import_module(f"cairn.cli.{module}"), f"cmd_{name.replace('-', '_')}"))


def _pickled_under(module_name: str, value: object) -> bytes:
    """[value] pickled as if its class still lived in `module_name`."""
    cls = type(value)
    old = types.ModuleType(module_name)
    setattr(old, cls.__name__, cls)
    saved = cls.__module__
    sys.modules[module_name] = old
    cls.__module__ = module_name
    try:
        return pickle.dumps([value], protocol=5)
    finally:
        cls.__module__ = saved
        del sys.modules[module_name]


def test_a_step_failure_pickled_before_the_move_still_loads():
    data = _pickled_under("cairn.task", StepFailure("ValueError", "bad", "trace"))
    with pytest.raises(ModuleNotFoundError):
        pickle.loads(data)
    (failure,) = serializers.loads([memoryview(data)], serializers.PICKLE)
    assert isinstance(failure, StepFailure) and (failure.type, failure.message) == ("ValueError", "bad")


def test_an_unknown_missing_module_still_fails_to_load():
    data = _pickled_under("cairn.no_such_module", StepFailure("E", "m", ""))
    with pytest.raises(ModuleNotFoundError):
        serializers.loads([memoryview(data)], serializers.PICKLE)
