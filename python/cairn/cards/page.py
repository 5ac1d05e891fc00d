"""A card's HTML page (one self-contained file: inline CSS, no network) and
the flow graph as SVG, shared by the default card and `cairn ui`."""

from __future__ import annotations

import html
from typing import Any

# No request leaves a card: images are data: URLs, styles and scripts inline.
CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
       "script-src 'unsafe-inline'; font-src data:")

CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;padding:16px 24px;color:#1d2330;background:#fff}
h1{font-size:20px;margin:4px 0 12px}h2{font-size:16px;margin:20px 0 8px;border-bottom:1px solid #e3e6ec;padding-bottom:4px}
h3{font-size:14px}code,pre{font-family:ui-monospace,'SF Mono',Menlo,Consolas,monospace;font-size:12.5px}
pre{background:#f5f6f8;padding:8px;border-radius:4px;overflow:auto;max-height:360px;margin:4px 0}
.cairn-table{border-collapse:collapse;margin:4px 0;font-size:13px}
.cairn-table th,.cairn-table td{border:1px solid #e3e6ec;padding:3px 8px;text-align:left;vertical-align:top}
.cairn-table th{background:#f5f6f8}.cairn-note{color:#5b6475;font-size:12px;margin:2px 0}
.cairn-error{border-left:4px solid #c62828;background:#fdecea;padding:6px 10px;margin:6px 0}
.cairn-component{margin:10px 0}.cairn-name{font-weight:600}
figure{margin:6px 0}img{max-width:100%}progress{width:260px;vertical-align:middle}
.cairn-artifact{margin:10px 0;padding-top:6px;border-top:1px solid #eef0f3}
.cairn-artifact .cairn-meta{color:#5b6475;font-size:12px;margin-left:8px}
svg.cairn-graph text{font-size:12px;font-family:system-ui,sans-serif}
svg.cairn-graph .cairn-step rect{fill:#f5f6f8;stroke:#8a94a6}
svg.cairn-graph .cairn-step.current rect{fill:#dbe8ff;stroke:#1f5fd1;stroke-width:2}
"""


def page(title: str, body: str, extra_head: str = "") -> str:
    return (
        "<!doctype html>\n<html><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style>{extra_head}</head>"
        f"<body>{body}</body></html>\n"
    )


def _depths(steps: list[dict[str, Any]]) -> dict[str, int]:
    """Longest distance from the first step, so a join sits below every branch."""
    names = [s["name"] for s in steps]
    nexts = {s["name"]: [n for n in s.get("next", []) if n in names] for s in steps}
    for s in steps:
        for case in (s.get("switch") or {}).get("cases", []):
            if len(case) > 1 and case[1] in names and case[1] not in nexts[s["name"]]:
                nexts[s["name"]].append(case[1])
    depth = dict.fromkeys(names, 0)
    for _ in range(len(names)):
        changed = False
        for n in names:
            for m in nexts[n]:
                # A switch may loop back; such an edge does not deepen its target.
                if depth[m] < depth[n] + 1 and names.index(m) > names.index(n):
                    depth[m] = depth[n] + 1
                    changed = True
        if not changed:
            break
    return depth


def graph_svg(steps: list[dict[str, Any]], current: str | None = None,
              labels: dict[str, str] | None = None) -> str:
    """The steps top to bottom by depth; each step a <g class="cairn-step"
    data-step=NAME> (the UI colours them by state), `current` highlighted."""
    if not steps:
        return ""
    depth = _depths(steps)
    rows: dict[int, list[str]] = {}
    for s in steps:
        rows.setdefault(depth[s["name"]], []).append(s["name"])
    bw, bh, gx, gy = 150, 40, 24, 36
    width = max(len(r) for r in rows.values()) * (bw + gx) + gx
    height = len(rows) * (bh + gy) + gy
    pos: dict[str, tuple[float, float]] = {}
    for d, names in rows.items():
        row_w = len(names) * (bw + gx) - gx
        x0 = (width - row_w) / 2
        for i, n in enumerate(names):
            pos[n] = (x0 + i * (bw + gx), gy + d * (bh + gy))
    edges = []
    for s in steps:
        targets = list(s.get("next", [])) + [c[1] for c in (s.get("switch") or {}).get("cases", []) if len(c) > 1]
        for t in dict.fromkeys(targets):
            if t not in pos:
                continue
            (x1, y1), (x2, y2) = pos[s["name"]], pos[t]
            edges.append(f'<line x1="{x1 + bw / 2:.0f}" y1="{y1 + bh:.0f}" x2="{x2 + bw / 2:.0f}" '
                         f'y2="{y2:.0f}" stroke="#8a94a6" marker-end="url(#cairn-arrow)"/>')
    nodes = []
    for s in steps:
        n = s["name"]
        x, y = pos[n]
        cls = "cairn-step current" if n == current else "cairn-step"
        sub = (labels or {}).get(n, "")
        kind = "foreach" if s.get("foreach") else ("join" if s.get("is_join") else "")
        sub = sub or kind
        nodes.append(
            f'<g class="{cls}" data-step="{html.escape(n)}"><rect x="{x:.0f}" y="{y:.0f}" width="{bw}" '
            f'height="{bh}" rx="6"/><text x="{x + bw / 2:.0f}" y="{y + 17:.0f}" text-anchor="middle" '
            f'font-weight="600">{html.escape(n[:20])}</text><text class="cairn-step-sub" x="{x + bw / 2:.0f}" '
            f'y="{y + 32:.0f}" text-anchor="middle" fill="#5b6475" font-size="11">{html.escape(sub)}</text></g>')
    marker = ('<defs><marker id="cairn-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
              'markerHeight="7" orient="auto"><path d="M0,0L10,5L0,10z" fill="#8a94a6"/></marker></defs>')
    return (f'<svg class="cairn-graph" viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" '
            f'height="{height:.0f}">{marker}{"".join(edges)}{"".join(nodes)}</svg>')
