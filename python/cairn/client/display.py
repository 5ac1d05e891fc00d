"""How client objects look: plain-text summaries (IPython), compact HTML
tables (Jupyter's `_repr_html_`) and the listing of `python flow.py dump`.

A summary shows status, timings, steps, tasks and artifact names with their
sizes and types, all from SQLite: displaying an object never reads a blob.
Only `dump_lines` shows values, because that is what it is asked for."""

from __future__ import annotations

import reprlib
from datetime import datetime
from typing import Any

from .base import RENDERERS
from .run import Flow, Run
from .task import DataArtifact, Step, Task

MAX_ROWS = 50  # rows of a table before "... and N more"
DUMP_REPR_WIDTH = 1000  # characters of a value `dump` shows
LATEST_RUNS = 10

Field = tuple[str, str]
Table = tuple[str, list[str], list[list[str]]]


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # unreachable; keeps type checkers content


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def _took(start: datetime | None, end: datetime | None) -> str:
    if not start or not end:
        return "-"
    seconds = (end - start).total_seconds()
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {seconds} s"


def _stamp(ts: float) -> datetime | None:
    return datetime.fromtimestamp(ts) if ts else None


def _artifact_table(task: Task, caption: str) -> Table:
    rows = [[a.id, a.type, human_size(a.size)] for a in task]
    return (caption, ["artifact", "type", "size"], rows)


def _tags(tags: frozenset[str]) -> str:
    return ", ".join(sorted(tags)) or "-"


# --- what each object shows: a title, its status, fields and tables -------------
def describe(obj: Any) -> tuple[str, str, list[Field], list[Table]]:
    if isinstance(obj, Flow):
        return _describe_flow(obj)
    if isinstance(obj, Run):
        return _describe_run(obj)
    if isinstance(obj, Step):
        return _describe_step(obj)
    if isinstance(obj, Task):
        return _describe_task(obj)
    if isinstance(obj, DataArtifact):
        fields = [("type", obj.type), ("size", human_size(obj.size)), ("sha", obj.sha),
                  ("created", _when(obj.created_at))]
        return repr(obj), "", fields, []
    return repr(obj), "", [], []


def _describe_flow(flow: Flow) -> tuple[str, str, list[Field], list[Table]]:
    rows, latest_ok = [], None
    for run in flow.runs():
        if len(rows) < LATEST_RUNS:
            rows.append([run.id, run.status, _when(run.created_at), _took(run.created_at, run.finished_at),
                         _tags(run.user_tags)])
        if latest_ok is None and run.successful:
            latest_ok = run
        if len(rows) >= LATEST_RUNS and latest_ok is not None:
            break
    fields = [("namespace", flow._ns or "(global)"),
              ("latest successful run", latest_ok.id if latest_ok else "-")]
    return repr(flow), "", fields, [("Latest runs", ["run", "status", "started", "took", "user tags"], rows)]


def _describe_run(run: Run) -> tuple[str, str, list[Field], list[Table]]:
    status = run.status
    fields = [("status", status), ("user", run.user), ("started", _when(run.created_at)),
              ("finished", _when(run.finished_at)), ("took", _took(run.created_at, run.finished_at))]
    if run.origin_pathspec:
        fields.append(("resumed from", run.origin_pathspec))
    params = run.parameters
    if params:
        fields.append(("parameters", ", ".join(f"{k}={v!r}" for k, v in params.items())))
    fields += [("user tags", _tags(run.user_tags)), ("system tags", _tags(run.system_tags))]
    rows = []
    for step in run:
        records = step._records()
        ok = sum(t.status == "succeeded" for t in records)
        running = sum(t.status == "running" for t in records)
        cloned = sum(bool(t.origin) for t in records)
        rows.append([step.id, str(len(records)), str(ok), str(len(records) - ok - running), str(running),
                     str(cloned), _when(step.created_at), _took(step.created_at, step.finished_at)])
    columns = ["step", "tasks", "succeeded", "failed", "running", "cloned", "started", "took"]
    tables = [("Steps", columns, rows)]
    end = run.end_task
    if end is not None:
        tables.append(_artifact_table(end, "Artifacts of the end step (run.data)"))
    return repr(run), status, fields, tables


def _describe_step(step: Step) -> tuple[str, str, list[Field], list[Table]]:
    records = step._records()
    failed = sum(t.status == "failed" for t in records)
    running = sum(t.status == "running" for t in records)
    status = "failed" if failed else "running" if running else "succeeded"
    done = f"{len(records) - failed - running} of {len(records)} tasks succeeded"
    fields = [("status", done + (f", {running} running" if running else "")),
              ("started", _when(step.created_at)), ("finished", _when(step.finished_at)),
              ("took", _took(step.created_at, step.finished_at))]
    rows = []
    for t in records[:MAX_ROWS]:
        start, end = _stamp(t.started_at), _stamp(t.finished_at)
        rows.append([str(t.task_id), "-" if t.foreach_index < 0 else str(t.foreach_index), t.status,
                     str(len(t.attempts)), _when(start), _took(start, end), t.origin or "-"])
    if len(records) > MAX_ROWS:
        rows.append([f"... and {len(records) - MAX_ROWS} more", "", "", "", "", "", ""])
    tables = [("Tasks", ["task", "index", "status", "attempts", "started", "took", "cloned from"], rows)]
    first = step.task
    if first is not None:
        tables.append(_artifact_table(first, f"Artifacts of task {first.id}"))
    return repr(step), status, fields, tables


def _describe_task(task: Task) -> tuple[str, str, list[Field], list[Table]]:
    status = "succeeded" if task.successful else "failed"
    fields = [("status", status)]
    if task.index is not None:
        fields.append(("foreach index", str(task.index)))
    fields += [("attempts", str(len(task.attempts))), ("started", _when(task.created_at)),
               ("finished", _when(task.finished_at)), ("took", _took(task.created_at, task.finished_at))]
    if task.origin_pathspec:
        fields.append(("cloned from", task.origin_pathspec))
    if task.exception is not None:
        fields.append(("exception", str(task.exception)))
    return repr(task), status, fields, [_artifact_table(task, "Artifacts")]


# --- renderings --------------------------------------------------------------------
def to_text(obj: Any) -> str:
    title, status, fields, tables = describe(obj)
    lines = [f"{title}  {status}".rstrip()]
    width = max((len(k) for k, _ in fields), default=0)
    lines += [f"  {k.ljust(width)}  {v}" for k, v in fields]
    for caption, headers, rows in tables:
        lines.append(f"  {caption}:")
        lines += ["    " + line for line in _columns([headers, *rows])]
    return "\n".join(lines)


def _columns(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]


_COLORS = {"succeeded": "#1a7f37", "failed": "#cf222e", "crashed": "#cf222e", "running": "#9a6700"}
_CELL = "padding:1px 8px;text-align:left;"


def to_html(obj: Any) -> str:
    import html  # here: only a notebook asks for HTML, and importing it costs a client's start ~1 ms

    title, status, fields, tables = describe(obj)
    e = html.escape
    badge = ""
    if status:
        badge = f' <span style="color:{_COLORS.get(status, "inherit")}">{e(status)}</span>'
    parts = [f'<div class="cairn" style="font-size:90%"><b>{e(title)}</b>{badge}']
    if fields:
        parts.append("<table><tbody>")
        parts += [f'<tr><th style="{_CELL}">{e(k)}</th><td style="{_CELL}">{e(v)}</td></tr>'
                  for k, v in fields]
        parts.append("</tbody></table>")
    for caption, headers, rows in tables:
        parts.append(f'<table><caption style="text-align:left">{e(caption)}</caption><thead><tr>')
        parts += [f'<th style="{_CELL}">{e(h)}</th>' for h in headers]
        parts.append("</tr></thead><tbody>")
        for row in rows:
            cells = "".join(f'<td style="{_CELL}">{e(c)}</td>' for c in row)
            parts.append(f"<tr>{cells}</tr>")
        parts.append("</tbody></table>")
    parts.append("</div>")
    return "".join(parts)


# --- python flow.py dump -----------------------------------------------------------
def dump_lines(task: Task, include: set[str] | None, max_value_size: int,
               show_values: bool = True, private: bool = False) -> tuple[list[str], dict[str, Any]]:
    """The listing of one task's artifacts, and their values by name. As in
    Metaflow's dump, private artifacts (`_name`) only when asked for, and a
    value stored in more than `max_value_size` bytes is not read when shown."""
    chosen = [a for a in task._artifact_map().values()
              if (a.id in include if include is not None else private or not a.id.startswith("_"))]
    short = reprlib.Repr()
    short.maxstring = short.maxother = short.maxlong = DUMP_REPR_WIDTH
    values: dict[str, Any] = {}
    rows = [["artifact", "type", "size"] + (["value"] if show_values else [])]
    for art in chosen:
        row = [art.id, art.type, human_size(art.size)]
        if show_values:
            if art.size > max_value_size:
                row.append(f"<too large to show: over --max-value-size {max_value_size}>")
                rows.append(row)
                continue
            text = short.repr(art.data).replace("\n", "\\n")
            row.append(text if len(text) <= DUMP_REPR_WIDTH else text[:DUMP_REPR_WIDTH] + "...")
        values[art.id] = art.data
        rows.append(row)
    head = f"{task.pathspec} ({len(chosen)} artifact{'s' if len(chosen) != 1 else ''})"
    return [head] + (["  " + line for line in _columns(rows)] if chosen else []), values


# The objects' _repr_html_ and _repr_pretty_ render through these.
RENDERERS.update(html=to_html, text=to_text)
