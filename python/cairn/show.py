"""`show`: a flow's steps as text, Graphviz dot, or Mermaid."""

from __future__ import annotations

from typing import Any


def _arrow(step: dict[str, Any]) -> str:
    t = step["transition"]
    if t == "foreach":
        return f"=> {step['next'][0]} (foreach over self.{step.get('foreach')})"
    if t == "switch":
        cases = ", ".join(f"{v!r}: {s}" for v, s in step["switch"]["cases"])
        return f"=> one of {{{cases}}} (by self.{step['switch']['var']})"
    if t == "end":
        return ""
    return "=> " + ", ".join(step["next"])


def render(spec: dict[str, Any], fmt: str = "text") -> str:
    if fmt == "dot":
        return _dot(spec)
    if fmt == "mermaid":
        return _mermaid(spec)
    lines = []
    if spec.get("doc"):
        lines += [spec["doc"], ""]
    for p in spec.get("parameters", []):
        lines.append(f"Parameter {p['name']} ({p['type']}, default {p['default']}){': ' + p['help'] if p['help'] else ''}")
    if spec.get("parameters"):
        lines.append("")
    for step in spec["steps"]:
        kind = " (join)" if step.get("is_join") else ""
        lines.append(f"Step {step['name']}{kind}")
        if step.get("doc"):
            lines += [f"    {line}" for line in step["doc"].splitlines()]
        arrow = _arrow(step)
        if arrow:
            lines.append(f"    {arrow}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _label(step: dict[str, Any]) -> str:
    doc = step.get("doc", "").splitlines()
    return step["name"] + (f"\\n{doc[0]}" if doc else "")


def _dot(spec: dict[str, Any]) -> str:
    out = [f'digraph "{spec["flow"]}" {{', "  rankdir=TB;", "  node [shape=box, style=rounded];"]
    for step in spec["steps"]:
        out.append(f'  "{step["name"]}" [label="{_label(step)}"];')
        for target in step["next"]:
            attrs = ""
            if step["transition"] == "foreach":
                attrs = f' [label="foreach {step.get("foreach")}", style=bold]'
            elif step["transition"] == "switch":
                value = next(v for v, s in step["switch"]["cases"] if s == target)
                attrs = f' [label="{step["switch"]["var"]} == {value}", style=dashed]'
            out.append(f'  "{step["name"]}" -> "{target}"{attrs};')
    out.append("}")
    return "\n".join(out)


def _mermaid(spec: dict[str, Any]) -> str:
    out = ["flowchart TD"]
    for step in spec["steps"]:
        out.append(f'  {step["name"]}["{step["name"]}"]')
    for step in spec["steps"]:
        for target in step["next"]:
            if step["transition"] == "foreach":
                out.append(f'  {step["name"]} ==>|foreach {step.get("foreach")}| {target}')
            elif step["transition"] == "switch":
                value = next(v for v, s in step["switch"]["cases"] if s == target)
                out.append(f'  {step["name"]} -.->|{value}| {target}')
            else:
                out.append(f"  {step['name']} --> {target}")
    return "\n".join(out)
