"""A FlowSpec class -> its GraphSpec: the plain JSON description of the steps
(names, transitions, source lines, decorator options) that the C++ engine
validates and runs. The transitions come from the `self.next(...)` calls in
each step's source, as in Metaflow."""

from __future__ import annotations

import ast
import inspect
import linecache
import os
import re
import sys
import textwrap
from dataclasses import dataclass, field
from typing import Any

from .decorators import InvalidStep, StepDecorator, with_decorators
from .parameters import Parameter

try:  # CPython's own SHA-256: hashlib would load OpenSSL's libcrypto into every run's worker
    from _sha2 import sha256 as _sha256  # Python 3.12+
except ImportError:
    try:
        from _sha256 import sha256 as _sha256  # Python 3.9-3.11
    except ImportError:  # another Python: the same digest through hashlib
        from hashlib import sha256 as _sha256

RESERVED = {"next", "input", "index", "foreach_stack", "merge_artifacts", "name", "script_name"}


@dataclass
class StepInfo:
    name: str
    func: Any
    file: str
    line: int = 0
    doc: str = ""
    transition: str = "none"
    next: list[str] = field(default_factory=list)
    next_line: int = 0
    foreach: str | None = None
    switch_var: str | None = None
    switch_cases: list[list[str]] = field(default_factory=list)
    is_join: bool = False
    parallel: bool = False  # self.next(..., num_parallel=N)
    decorators: list[StepDecorator] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    code_hash: str = ""

    def to_spec(self) -> dict[str, Any]:
        options: dict[str, Any] = {}
        for d in self.decorators:
            options.update(d.graph_options())
        spec: dict[str, Any] = {
            "name": self.name, "line": self.line, "doc": self.doc, "transition": self.transition,
            "next": self.next, "next_line": self.next_line, "is_join": self.is_join,
            "options": options, "problems": self.problems, "code_hash": self.code_hash,
        }
        if self.foreach:
            spec["foreach"] = self.foreach
        if self.switch_var:
            spec["switch"] = {"var": self.switch_var, "cases": self.switch_cases}
        if self.parallel:
            spec["parallel"] = True
        return spec


_TREES: dict[str, ast.Module] = {}


def _tree(path: str) -> ast.Module | None:
    if path not in _TREES:
        try:
            with open(path, encoding="utf-8") as f:
                _TREES[path] = ast.parse(f.read(), filename=path)
        except (OSError, SyntaxError):
            return None
    return _TREES[path]


def _find_def(tree: ast.Module | None, func: Any) -> ast.FunctionDef | None:
    if tree is None:
        return None
    first = func.__code__.co_firstlineno
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == func.__name__:
            lines = [node.lineno] + [d.lineno for d in node.decorator_list]
            if first in lines:
                return node  # type: ignore[return-value]
    return None


def _self_attr(node: ast.AST) -> str | None:
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
        return node.attr
    return None


def _parse_next(info: StepInfo, node: ast.FunctionDef) -> None:
    calls = [
        n for n in ast.walk(node)
        if isinstance(n, ast.Call) and _self_attr(n.func) == "next"
    ]
    if not calls:
        info.transition = "end" if info.name == "end" else "none"
        return
    calls.sort(key=lambda c: c.lineno)
    call = calls[-1]
    info.next_line = call.lineno
    shapes = {ast.dump(c) for c in calls}
    if len(shapes) > 1:
        info.problems.append(
            "calls self.next more than once with different arguments; a step must end with "
            "exactly one self.next(...)"
        )
    kwargs = {k.arg: k.value for k in call.keywords}
    for key in kwargs:
        if key not in ("foreach", "condition", "num_parallel"):
            info.problems.append(f"self.next got an unknown keyword argument '{key}'")

    def const_str(value: ast.AST | None, what: str) -> str | None:
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            return value.value
        info.problems.append(f"self.next({what}=...) must be a string literal naming an attribute")
        return None

    if call.args and isinstance(call.args[0], ast.Dict):
        info.transition = "switch"
        mapping = call.args[0]
        for k, v in zip(mapping.keys, mapping.values):
            target = _self_attr(v)
            if not isinstance(k, ast.Constant) or target is None:
                info.problems.append("a switch maps literal values to steps: {'value': self.step, ...}")
                continue
            info.switch_cases.append([str(k.value), target])
            info.next.append(target)
        info.switch_var = const_str(kwargs.get("condition"), "condition") if "condition" in kwargs else None
        if info.switch_var is None and "condition" not in kwargs:
            info.problems.append("a switch (self.next with a dict) needs condition='<attribute>'")
        return
    for i, arg in enumerate(call.args):
        target = _self_attr(arg)
        if target is None:
            info.problems.append(f"argument {i + 1} of self.next is not a step (write self.<step_name>)")
        else:
            info.next.append(target)
    if "num_parallel" in kwargs:
        from .parallel import PARALLEL_VAR

        info.transition, info.foreach, info.parallel = "foreach", PARALLEL_VAR, True
        if "foreach" in kwargs or len(info.next) != 1:
            info.problems.append("num_parallel= takes exactly one step and no foreach: "
                                 "self.next(self.train, num_parallel=4)")
    elif "foreach" in kwargs:
        info.transition = "foreach"
        info.foreach = const_str(kwargs["foreach"], "foreach")
        if len(info.next) != 1:
            info.problems.append("a foreach transition must name exactly one step")
    elif "condition" in kwargs:
        info.problems.append("condition= is for switches: self.next({'value': self.step, ...}, condition='var')")
    else:
        info.transition = "branch" if len(info.next) > 1 else "linear"


def _signature_problem(func: Any, info: StepInfo) -> None:
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        info.problems.append("is not a method that can be inspected")
        return
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) != len(params) or not 1 <= len(params) <= 2:
        info.problems.append(
            "a step must be defined as 'def name(self)' or, for a join, 'def name(self, inputs)'"
        )
    info.is_join = len(params) == 2


def _class_node(tree: ast.Module | None, klass: type) -> ast.ClassDef | None:
    if tree is None:
        return None
    nodes = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == klass.__name__]
    if len(nodes) < 2:
        return nodes[0] if nodes else None  # inspect would parse the file again to say the same
    try:
        first = inspect.getsourcelines(klass)[1]
    except (OSError, TypeError):
        first = 0
    for node in nodes:
        if first in [node.lineno] + [d.lineno for d in node.decorator_list]:
            return node
    return nodes[0]


def _source_file(klass: type) -> str | None:
    """The file that defines a class. inspect finds it through the class's
    module, which fails for a module that is not in sys.modules (a flow file
    run with runpy under another name); the methods' code still knows."""
    try:
        return inspect.getsourcefile(klass)
    except TypeError:
        for attr in vars(klass).values():
            code = getattr(getattr(attr, "__func__", attr), "__code__", None)
            if code is not None:
                return code.co_filename
        return None


def _class_line(klass: type) -> int:
    file = _source_file(klass)
    node = _class_node(_tree(os.path.abspath(file)) if file else None, klass)
    return node.lineno if node else 1


def _attribute_line(klass: type, name: str) -> int:
    """The line in the class body that defines `name` (an assignment or a def)."""
    file = _source_file(klass)
    node = _class_node(_tree(os.path.abspath(file)) if file else None, klass)
    if node is None:
        return 1
    for stmt in node.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and stmt.name == name:
            return stmt.lineno
        targets = stmt.targets if isinstance(stmt, ast.Assign) else \
            [stmt.target] if isinstance(stmt, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return stmt.lineno
    return node.lineno


def _wrapped_function(target: Any) -> Any:
    """The function inside a staticmethod, classmethod or property, if any."""
    for attr in ("__func__", "fget"):
        inner = getattr(target, attr, None)
        if inspect.isfunction(inner):
            return inner
    return target if inspect.isfunction(target) else None


@dataclass
class FlowProblem:
    """A problem Python found that belongs to no graph step: a @step on a
    class attribute that is not a function has no self.next to place it."""

    line: int
    name: str
    what: str


def collect_steps(flow_cls: type, extra: list[StepDecorator] | None = None,
                  flow_problems: list[FlowProblem] | None = None) -> list[StepInfo]:
    """Every @step of the class and its bases, in source order. A @step on a
    non-function goes to `flow_problems` instead (when given)."""
    found: dict[str, tuple[Any, type]] = {}
    for klass in reversed(flow_cls.__mro__):
        for name, attr in vars(klass).items():
            wrapped = isinstance(attr, (staticmethod, classmethod)) and getattr(attr.__func__, "_cairn_step", False)
            if wrapped or getattr(attr, "_cairn_step", False) is True:
                found[name] = (attr, klass)
    steps: list[StepInfo] = []
    for name, (attr, klass) in found.items():
        file = os.path.abspath(_source_file(klass) or "<unknown>")
        problem = None
        if isinstance(attr, InvalidStep):
            problem = attr.reason
            func = _wrapped_function(attr.target)
            if func is None:
                if flow_problems is not None:
                    flow_problems.append(FlowProblem(_attribute_line(klass, name), name, problem))
                continue
        elif isinstance(attr, (staticmethod, classmethod)):
            func = attr.__func__
            problem = f"a step must be a plain method, not a {type(attr).__name__}"
        else:
            func = attr
        info = StepInfo(name, func, file, line=func.__code__.co_firstlineno)
        if problem:
            # The method still has its self.next: keep the edges, so that the
            # graph checks run and this is the only problem reported for it.
            info.problems.append(problem)
        else:
            _signature_problem(func, info)
        file = os.path.abspath(func.__code__.co_filename)
        info.file = file
        node = _find_def(_tree(file), func)
        if node is not None:
            info.line = node.lineno
            _parse_next(info, node)
        else:
            info.problems.append("its source could not be read, so its self.next cannot be found")
        info.doc = inspect.getdoc(func) or ""
        info.decorators = with_decorators(func, extra or [])
        if node is not None:
            info.code_hash = code_hash(file, node, info.decorators)
        if name in RESERVED:
            info.problems.append(f"'{name}' is a reserved name; rename the step")
        steps.append(info)
    steps.sort(key=lambda s: (s.file, s.line))
    return steps


def code_hash(file: str, node: ast.FunctionDef, decorators: list[StepDecorator]) -> str:
    """A stable digest of a step's code (docs/architecture.md, "The step code
    hash"): the text of its `def` through its last line, dedented and with
    trailing spaces dropped, then each decorator with its arguments, by name.
    Equal hashes mean a task given equal inputs computes the same thing, so
    resume can reuse its finished tasks (and step caching could)."""
    lines = linecache.getlines(file)[node.lineno - 1:node.end_lineno]
    source = textwrap.dedent("".join(line.rstrip() + "\n" for line in lines))
    digest = _sha256(source.encode("utf-8"))
    for d in sorted(decorators, key=lambda d: d.name):
        digest.update(b"\0" + repr(d).encode("utf-8"))
    return digest.hexdigest()[:32]


def attributes_of(flow_cls: type, kind: type) -> dict[str, Any]:
    """{attribute name: value} of the flow's class-level values of `kind`
    (Parameters, Configs), bases first."""
    found: dict[str, Any] = {}
    for klass in reversed(flow_cls.__mro__):
        for attr_name, attr in vars(klass).items():
            if isinstance(attr, kind):
                found[attr_name] = attr
    return found


def parameters_of(flow_cls: type) -> dict[str, Parameter]:
    return attributes_of(flow_cls, Parameter)


def build_spec(flow_cls: type, extra: list[StepDecorator] | None = None,
               validate: bool = True) -> dict[str, Any]:
    """The GraphSpec of a flow class. With `validate`, raises GraphError
    listing every problem (Python's and the C++ checker's) in line order."""
    mutators = sys.modules.get(f"{__package__}.user_decorators")
    if mutators is not None:  # a flow with mutators has loaded them (cairn.StepMutator, ...)
        mutators.apply_mutators(flow_cls, extra or [])
    flow_problems: list[FlowProblem] = []
    steps = collect_steps(flow_cls, extra, flow_problems)
    file = os.path.abspath(_source_file(flow_cls) or "<unknown>")
    params = parameters_of(flow_cls)
    step_names = {s.name for s in steps}
    for attr_name, p in params.items():
        if attr_name in step_names or p.name in step_names:
            for s in steps:
                if s.name in (attr_name, p.name):
                    s.problems.append(f"the name '{s.name}' is used by both a step and a Parameter")
    from .parallel import check_parallel

    check_parallel(steps)
    spec = {
        "flow": flow_cls.__name__,
        "file": file,
        "line": _class_line(flow_cls),
        # The class's own docstring: FlowSpec's would otherwise be inherited.
        "doc": inspect.cleandoc(flow_cls.__dict__.get("__doc__") or ""),
        "steps": [s.to_spec() for s in steps],
        "parameters": [
            {"name": p.name, "attr": attr, "type": p.type_name, "help": p.help,
             "required": p.required, "default": _shown_default(p)}
            for attr, p in params.items()
        ],
    }
    spec.update(flow_level_spec(flow_cls))
    if validate:
        check(spec, flow_problems)
    return spec


def flow_level_spec(flow_cls: type) -> dict[str, Any]:
    """What the flow's configs and flow decorators add to its GraphSpec (and
    so to each run's record): config values, project, deploy-time decorators."""
    from .config import config_dicts
    from .flow_decorators import deploy_time_record
    from .project import project_info
    from .home import username
    from .unsupported import check_flow

    check_flow(flow_cls)
    extra: dict[str, Any] = {}
    configs = config_dicts(flow_cls)
    if configs:
        extra["configs"] = configs
    info = project_info(flow_cls, username())
    if info:
        extra["project"] = info
    deploy = deploy_time_record(flow_cls)
    if deploy:
        extra["deploy"] = deploy
    return extra


def _shown_default(p: Parameter) -> str:
    from .config import resolve_value

    d = resolve_value(p.default)  # configs are read before the graph is built
    if callable(d) and not isinstance(d, type):
        return f"<computed by {getattr(d, '__name__', 'a function')}>"
    return repr(d)


_PROBLEM = re.compile(r"^(?P<file>.*?):(?P<line>\d+): (?P<rest>.*)$")


def check(spec: dict[str, Any], flow_problems: list[FlowProblem] | None = None) -> None:
    """Validates `spec` with the C++ checker; raises GraphError listing every
    problem, with the ones only Python found merged in line order. Problems
    about the whole flow (no start, no end) are placed on the class line."""
    import json

    from . import _core

    lines: list[tuple[int, str]] = [
        (p.line, f"{spec['file']}:{p.line}: step '{p.name}': {p.what}") for p in flow_problems or []
    ]
    try:
        _core.validate_graph(json.dumps(spec))
    except _core.GraphError as e:
        for text in str(e).splitlines():
            m = _PROBLEM.match(text)
            if m is None:
                lines.append((0, text))
                continue
            line = int(m.group("line"))
            lines.append((line, f"{m.group('file')}:{line}: {m.group('rest')}"))
    if lines:
        lines.sort(key=lambda item: item[0])
        raise _core.GraphError("\n".join(text for _, text in lines))


def spec_for(flow_cls: type, with_decorators: list[str] | None = None) -> dict[str, Any]:
    """Builds and validates the GraphSpec (with `--with` decorators); raises
    GraphError listing every problem."""
    import json

    from . import _core
    from .decorators import parse_with

    spec = build_spec(flow_cls, [parse_with(w) for w in with_decorators or []])
    spec["joins"] = _core.validate_graph(json.dumps(spec))
    return spec
