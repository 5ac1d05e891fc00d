"""`show`: a flow's steps as text, Graphviz dot, or Mermaid.

Every format shows each step once and each transition once: a branch an edge
per branch, a foreach one bold edge named by its attribute, a switch one
dashed edge per case, named by its value."""

from __future__ import annotations

from typing import Any


def _arrow(step: dict[str, Any]) -> str:
    t = step["transition"]
    if t == "foreach":
        return f"=> {step['next'][0]} (foreach over self.{step.get('foreach')})"
    if t == "switch":
        cases = ", ".join(f"{v!r}: {s}" for v, s in step["switch"]["cases"])
        return f"=> one of {{{cases}}} (by self.{step['switch']['var']})"
    if t == "end" or not step["next"]:
        return ""
    return "=> " + ", ".join(step["next"])


def render(spec: dict[str, Any], fmt: str = "text") -> str:
    if fmt == "dot":
        return _dot(spec)
    if fmt == "mermaid":
        return _mermaid(spec)
    return _text(spec)


def _text(spec: dict[str, Any]) -> str:
    lines = []
    if spec.get("doc"):
        lines += [spec["doc"], ""]
    for p in spec.get("parameters", []):
        what = "required" if p.get("required") else f"default {p['default']}"
        lines.append(f"Parameter {p['name']} ({p['type']}, {what})" + (f": {p['help']}" if p["help"] else ""))
    if spec.get("parameters"):
        lines.append("")
    lines += _flow_level_lines(spec)
    for step in spec["steps"]:
        kind = " (join)" if step.get("is_join") else ""
        lines.append(f"Step {step['name']}{kind}")
        if step.get("doc"):
            lines += [f"    {line}".rstrip() for line in step["doc"].splitlines()]
        arrow = _arrow(step)
        if arrow:
            lines.append(f"    {arrow}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _flow_level_lines(spec: dict[str, Any]) -> list[str]:
    """Configs, the @project branch, and the deploy-time decorators."""
    lines = [f"Config {name}: {value!r}" for name, value in spec.get("configs", {}).items()]
    project = spec.get("project")
    if project:
        lines.append(f"Project {project['project_name']}, branch {project['branch_name']}")
    for name, args in spec.get("deploy", {}).items():
        shown = ", ".join(f"{k}={v!r}" for k, v in args.items() if v not in (None, [], {}, False))
        lines.append(f"@{name}({shown}): recorded with each run; takes effect when the flow is "
                     f"deployed to a scheduler, which cairn does not do yet")
    return [*lines, ""] if lines else []


def _edges(step: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(target, kind, label) for each transition out of `step`; kind is
    'next', 'foreach' or 'switch'."""
    if step["transition"] == "foreach":
        return [(t, "foreach", f"foreach {step.get('foreach')}") for t in step["next"]]
    if step["transition"] == "switch":
        var = step["switch"]["var"]
        return [(t, "switch", f"{var} == {v}") for v, t in step["switch"]["cases"]]
    return [(t, "next", "") for t in step["next"]]


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _dot(spec: dict[str, Any]) -> str:
    out = [f"digraph {_dot_quote(spec['flow'])} {{", "  rankdir=TB;", "  node [shape=box, style=rounded];"]
    for step in spec["steps"]:
        doc = (step.get("doc") or "").splitlines()
        label = step["name"] + (f"\n{doc[0]}" if doc else "")
        shape = ", shape=box, peripheries=2" if step.get("is_join") else ""
        out.append(f"  {_dot_quote(step['name'])} [label={_dot_quote(label)}{shape}];")
    for step in spec["steps"]:
        for target, kind, label in _edges(step):
            style = {"foreach": ", style=bold", "switch": ", style=dashed", "next": ""}[kind]
            attrs = f" [label={_dot_quote(label)}{style}]" if label else ""
            out.append(f"  {_dot_quote(step['name'])} -> {_dot_quote(target)}{attrs};")
    out.append("}")
    return "\n".join(out) + "\n"


def _mermaid_id(name: str) -> str:
    # Mermaid reserves some words as node ids ("end" ends a subgraph), so
    # every id gets a prefix; the label keeps the step's own name.
    return f"step_{name}"


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;").replace("|", "#124;")


def _mermaid(spec: dict[str, Any]) -> str:
    out = ["flowchart TD"]
    for step in spec["steps"]:
        label = _mermaid_text(step["name"])
        node = f'{_mermaid_id(step["name"])}[["{label}"]]' if step.get("is_join") else \
            f'{_mermaid_id(step["name"])}["{label}"]'
        out.append(f"  {node}")
    arrows = {"foreach": "==>", "switch": "-.->", "next": "-->"}
    for step in spec["steps"]:
        for target, kind, label in _edges(step):
            text = f'|"{_mermaid_text(label)}"|' if label else ""
            out.append(f"  {_mermaid_id(step['name'])} {arrows[kind]}{text} {_mermaid_id(target)}")
    return "\n".join(out) + "\n"
