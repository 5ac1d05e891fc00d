"""The default card's own sections: the task's metadata, its parameters,
every artifact with type, size and a preview, and the flow's graph with
this step marked."""

from __future__ import annotations

import html
import time
from typing import Any

from ..client.display import human_size
from .page import graph_svg
from .preview import preview_html, table_html

RENDER_TIME_MARK = "<!--cairn-render-seconds-->"  # replaced by CardSession.render


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else ""


def artifact_html(name: str, type_name: str, size: int, value_html: str) -> str:
    return (f'<div class="cairn-artifact" data-artifact="{html.escape(name)}">'
            f"<strong>{html.escape(name)}</strong>"
            f'<span class="cairn-meta">{html.escape(type_name)} · {human_size(size)}</span>'
            f"{value_html}</div>")


def sections(session: Any, card: Any, context: dict[str, Any]) -> str:
    info = session.info
    now = time.time()
    result = context.get("result") or {}
    live = context.get("live")
    status = "running" if live else ("succeeded (failure caught by @catch)" if result.get("caught") else "succeeded")
    meta = [
        ["pathspec", session.title()],
        ["attempt", str(info.get("attempt", 0))],
        ["status", status],
        ["started", _when(session.started_at)],
        ["finished", "" if live else _when(now)],
        ["duration", f"{now - session.started_at:.3f} s"],
        ["user", str(info.get("username") or "")],
        ["tags", ", ".join(info.get("tags") or [])],
    ]
    out = ["<h2>Task</h2>", table_html([], meta)]
    ctx, flow = context.get("ctx"), context.get("flow")
    if ctx is not None and flow is not None:
        params = sorted(ctx.param_names)
        if params:
            rows = [[p, repr(flow.__dict__.get(p))] for p in params]
            out += ["<h2>Parameters</h2>", table_html(["name", "value"], rows)]
        hidden = set(card.options.get("hidden_artifacts", []))
        shown = [r for r in context.get("records", [])
                 if not r[0].startswith("_") and r[0] not in ctx.param_names and r[0] not in hidden]
        out.append(f"<h2>Artifacts ({len(shown)})</h2>")
        own = vars(flow)
        for rec in sorted(shown, key=lambda r: r[0]):
            name = rec[0]
            try:
                value = own[name] if name in own else ctx.store_load(rec, ctx.sources.get(name, ""))
                shown_html = preview_html(value)
            except Exception as e:  # noqa: BLE001 - one unreadable artifact must not lose the card
                shown_html = f'<div class="cairn-error">{html.escape(f"{type(e).__name__}: {e}")}</div>'
            out.append(artifact_html(name, rec[3], rec[2], shown_html))
    spec = info.get("spec")
    if spec:
        out += ["<h2>Flow</h2>", graph_svg(spec.get("steps", []), current=info.get("step_name"))]
    out.append(f'<p class="cairn-note">Card rendered in <span id="cairn-render-seconds">{RENDER_TIME_MARK}'
               "</span> s.</p>")
    return "".join(out)
