"""Vega-Lite specs drawn without a Vega runtime (cards must work offline and
cairn ships no third-party JavaScript): a single-view `bar`, `line`, `area`
or `point` chart with inline `data.values` and `x`/`y` field encodings becomes
a small SVG; any other spec is shown as its JSON with a note saying so."""

from __future__ import annotations

import html
import json
from typing import Any

W, H, PAD = 480, 240, 40


def _field(enc: dict[str, Any], axis: str) -> str | None:
    channel = enc.get(axis)
    return channel.get("field") if isinstance(channel, dict) else None


def _fallback(spec: Any, why: str) -> str:
    text = json.dumps(spec, indent=2, default=str)
    return (f'<div class="cairn-note">Vega-Lite chart shown as its spec: {html.escape(why)} '
            f'(cards draw only simple bar, line, area and point charts offline).</div>'
            f'<pre class="cairn-value">{html.escape(text[:20000])}</pre>')


def vega_html(spec: Any) -> str:
    if not isinstance(spec, dict):
        return _fallback(spec, "not a dict")
    mark = spec.get("mark")
    mark = mark.get("type") if isinstance(mark, dict) else mark
    enc = spec.get("encoding") or {}
    values = (spec.get("data") or {}).get("values") if isinstance(spec.get("data"), dict) else None
    xf, yf = _field(enc, "x"), _field(enc, "y")
    if mark not in ("bar", "line", "area", "point", "circle") or not isinstance(values, list) \
            or not xf or not yf or not values:
        return _fallback(spec, "its mark, data or encoding is beyond the offline renderer")
    try:
        ys = [float(v[yf]) for v in values]
    except (KeyError, TypeError, ValueError):
        return _fallback(spec, f"field '{yf}' is not numeric in every row")
    xs = [v.get(xf) for v in values]
    numeric_x = all(isinstance(x, (int, float)) for x in xs) and mark != "bar"
    lo, hi = min(0.0, *ys), max(0.0, *ys)
    span = (hi - lo) or 1.0

    def sy(y: float) -> float:
        return H - PAD - (y - lo) / span * (H - 2 * PAD)

    n = len(values)
    if numeric_x:
        xlo, xhi = min(xs), max(xs)
        xspan = (xhi - xlo) or 1.0
        px = [PAD + (x - xlo) / xspan * (W - 2 * PAD) for x in xs]
    else:
        step = (W - 2 * PAD) / n
        px = [PAD + step * (i + 0.5) for i in range(n)]
    parts = [f'<line x1="{PAD}" y1="{sy(0):.1f}" x2="{W - PAD}" y2="{sy(0):.1f}" stroke="#888"/>',
             f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{H - PAD}" stroke="#888"/>']
    if mark == "bar":
        bw = max(1.0, (W - 2 * PAD) / n * 0.8)
        for x, y, label in zip(px, ys, xs):
            top, bottom = sorted((sy(y), sy(0)))
            parts.append(f'<rect x="{x - bw / 2:.1f}" y="{top:.1f}" width="{bw:.1f}" '
                         f'height="{bottom - top:.1f}" fill="#4c78a8"><title>{html.escape(str(label))}: {y:g}</title></rect>')
    else:
        order = sorted(range(n), key=lambda i: px[i])
        points = " ".join(f"{px[i]:.1f},{sy(ys[i]):.1f}" for i in order)
        if mark in ("line", "area"):
            if mark == "area":
                poly = f"{px[order[0]]:.1f},{sy(0):.1f} {points} {px[order[-1]]:.1f},{sy(0):.1f}"
                parts.append(f'<polygon points="{poly}" fill="#4c78a8" opacity="0.4"/>')
            parts.append(f'<polyline points="{points}" fill="none" stroke="#4c78a8" stroke-width="2"/>')
        else:
            parts += [f'<circle cx="{px[i]:.1f}" cy="{sy(ys[i]):.1f}" r="3" fill="#4c78a8"/>' for i in order]
    if n <= 20:
        parts += [f'<text x="{x:.1f}" y="{H - PAD + 14}" font-size="10" text-anchor="middle">'
                  f"{html.escape(str(label))[:12]}</text>" for x, label in zip(px, xs)]
    parts.append(f'<text x="{PAD - 4}" y="{sy(hi) + 4:.1f}" font-size="10" text-anchor="end">{hi:g}</text>')
    parts.append(f'<text x="{PAD - 4}" y="{sy(lo) + 4:.1f}" font-size="10" text-anchor="end">{lo:g}</text>')
    title = spec.get("title")
    title_html = f"<div><strong>{html.escape(str(title))}</strong></div>" if title else ""
    axes = f'<div class="cairn-note">x: {html.escape(str(xf))}, y: {html.escape(str(yf))}</div>'
    return (f'{title_html}<svg class="cairn-vega" viewBox="0 0 {W} {H}" width="{W}" height="{H}" '
            f'role="img">{"".join(parts)}</svg>{axes}')
