"""`show` as text, Graphviz dot and Mermaid: every step is a node, every
transition an edge, and the output parses."""

from __future__ import annotations

import importlib.util
import re
import sys

import pytest
import shapes
from cairn.graph import build_spec
from cairn.show import render


def load_flow_class(tmp_path, name: str, source: str):
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"show_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return next(v for v in vars(module).values()
                if isinstance(v, type) and v.__module__ == module.__name__ and hasattr(v, "next"))


def expected_edges(spec) -> set[tuple[str, str, str]]:
    """(from, to, label) for each transition; labels as show writes them."""
    edges = set()
    for s in spec["steps"]:
        if s["transition"] == "switch":
            edges |= {(s["name"], t, f"{s['switch']['var']} == {v}") for v, t in s["switch"]["cases"]}
        elif s["transition"] == "foreach":
            edges.add((s["name"], s["next"][0], f"foreach {s['foreach']}"))
        else:
            edges |= {(s["name"], t, "") for t in s["next"]}
    return edges


QUOTED = r'"((?:[^"\\]|\\.)*)"'


def unquote_dot(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), text)


def parse_dot(text: str):
    """A strict reader for the subset of dot that show writes: fails on any
    line it does not understand."""
    lines = text.strip().splitlines()
    assert re.fullmatch(rf"digraph {QUOTED} \{{", lines[0]), lines[0]
    assert lines[-1] == "}"
    nodes, edges = {}, set()
    for line in lines[1:-1]:
        line = line.strip()
        if line in ("rankdir=TB;", "node [shape=box, style=rounded];"):
            continue
        m = re.fullmatch(rf"{QUOTED} \[label={QUOTED}(?:, shape=box, peripheries=2)?\];", line)
        if m:
            nodes[unquote_dot(m.group(1))] = unquote_dot(m.group(2))
            continue
        m = re.fullmatch(rf"{QUOTED} -> {QUOTED}(?: \[label={QUOTED}(?:, style=(?:bold|dashed))?\])?;", line)
        assert m, f"not a node or edge statement: {line!r}"
        edges.add((unquote_dot(m.group(1)), unquote_dot(m.group(2)), unquote_dot(m.group(3) or "")))
    return nodes, edges


def parse_mermaid(text: str):
    lines = text.strip().splitlines()
    assert lines[0] == "flowchart TD"
    nodes, edges = {}, set()
    for line in lines[1:]:
        line = line.strip()
        m = re.fullmatch(r'(\w+)(?:\["([^"]*)"\]|\[\["([^"]*)"\]\])', line)
        if m:
            assert m.group(1) != "end", "'end' is reserved in Mermaid and cannot be a node id"
            nodes[m.group(1)] = m.group(2) if m.group(2) is not None else m.group(3)
            continue
        m = re.fullmatch(r'(\w+) (?:-->|==>|-\.->)(?:\|"([^"]*)"\|)? (\w+)', line)
        assert m, f"not a node or edge: {line!r}"
        edges.add((m.group(1), m.group(3), m.group(2) or ""))
    for a, b, _ in edges:
        assert a in nodes and b in nodes, (a, b)
    return {nodes[k]: k for k in nodes}, {(nodes[a], nodes[b], label) for a, b, label in edges}


@pytest.mark.parametrize("name", shapes.shape_names())
def test_every_step_is_a_node_and_every_transition_an_edge(tmp_path, name):
    graph = shapes.load(name)
    flow_cls = load_flow_class(tmp_path, name, shapes.flow_source(graph))
    spec = build_spec(flow_cls)
    steps = {s["name"] for s in graph["steps"]}
    edges = expected_edges(graph)

    nodes, dot_edges = parse_dot(render(spec, "dot"))
    assert set(nodes) == steps
    assert dot_edges == edges

    nodes, mermaid_edges = parse_mermaid(render(spec, "mermaid"))
    assert set(nodes) == steps
    assert mermaid_edges == edges

    text = render(spec, "text")
    for s in graph["steps"]:
        assert f"Step {s['name']}" in text
        assert (s.get("doc") or f"Step {s['name']}.") in text  # the docstring


def test_show_text_has_docstrings_transitions_and_parameters(runner):
    flow = runner.write("shown.py", '''
        from cairn import FlowSpec, Parameter, step

        class ShownFlow(FlowSpec):
            """Trains "models", with a \\\\backslash."""

            rate = Parameter("rate", default=0.1, help="how fast")

            @step
            def start(self):
                """Pick the "mode".

                Second line of the docstring."""
                self.mode = "fast"
                self.next({"fast": self.quick, "slow": self.careful}, condition="mode")

            @step
            def quick(self):
                self.items = [1, 2]
                self.next(self.each, foreach="items")

            @step
            def each(self):
                self.next(self.gather)

            @step
            def gather(self, inputs):
                self.next(self.end)

            @step
            def careful(self):
                self.next(self.end)

            @step
            def end(self):
                """The end."""

        if __name__ == "__main__":
            ShownFlow()
        ''')
    text = runner.run(flow, "show", check=True).stdout
    assert text.startswith('Trains "models", with a \\backslash.\n')
    assert "Parameter rate (float, default 0.1): how fast" in text
    assert ('Step start\n    Pick the "mode".\n\n    Second line of the docstring.\n'
            "    => one of {'fast': quick, 'slow': careful} (by self.mode)\n") in text
    assert "Step quick\n    => each (foreach over self.items)\n" in text
    assert "Step gather (join)\n    => end\n" in text
    assert "Step end\n    The end.\n" in text

    dot = runner.run(flow, "show", "--format", "dot", check=True).stdout
    nodes, edges = parse_dot(dot)
    assert nodes["start"] == 'start\nPick the "mode".'
    assert ("start", "quick", "mode == fast") in edges
    assert ("quick", "each", "foreach items") in edges

    mermaid = runner.run(flow, "show", "--format", "mermaid", check=True).stdout
    nodes, edges = parse_mermaid(mermaid)
    assert set(nodes) == {"start", "quick", "each", "gather", "careful", "end"}
    assert ("careful", "end", "") in edges
    assert not runner.root.exists()  # show writes nothing


def test_flow_without_docstring_does_not_show_flowspecs(tmp_path):
    flow_cls = load_flow_class(tmp_path, "linear", shapes.flow_source(shapes.load("linear")))
    assert render(build_spec(flow_cls)).startswith("Step start\n")
