"""HTML previews of artifact values, shared by the default card and `cairn
ui`: scalars, strings, bytes, containers, numpy arrays and pandas objects
(a head, never the whole value). numpy and pandas are recognised by type
name, so nothing here imports them."""

from __future__ import annotations

import html
import reprlib
from typing import Any

MAX_TEXT = 2000     # characters of a string or repr shown
HEAD_ROWS = 10      # rows of a DataFrame or Series
HEAD_COLUMNS = 20   # columns of a DataFrame
CELL_CHARS = 80     # characters of one table cell

_repr = reprlib.Repr()
_repr.maxlist = _repr.maxtuple = _repr.maxset = _repr.maxfrozenset = _repr.maxdeque = 20
_repr.maxdict = 20
_repr.maxstring = 200
_repr.maxother = 200
_repr.maxlevel = 3


def _clip(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[:limit] + f"… ({len(text) - limit} more characters)"


def _pre(text: str) -> str:
    return f'<pre class="cairn-value">{html.escape(_clip(text))}</pre>'


def _kind(value: Any) -> str:
    """numpy.ndarray, pandas.DataFrame, ...: the top package and the class."""
    t = type(value)
    return f"{t.__module__.split('.')[0]}.{t.__qualname__}"


def _cell(value: Any) -> str:
    return html.escape(_clip(str(value), CELL_CHARS))


def table_html(headers: list[str], rows: list[list[str]], escaped: bool = False) -> str:
    """A table from text cells (escaped here unless `escaped`)."""
    esc = (lambda s: s) if escaped else _cell
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    thead = f"<thead><tr>{head}</tr></thead>" if headers else ""
    return f'<table class="cairn-table">{thead}<tbody>{body}</tbody></table>'


def _dataframe(df: Any) -> str:
    rows, cols = df.shape
    head = df.iloc[:HEAD_ROWS, :HEAD_COLUMNS]
    headers = [""] + [str(c) for c in head.columns]
    body = [[str(idx)] + [str(v) for v in row] for idx, row in zip(head.index, head.itertuples(index=False))]
    more = []
    if rows > HEAD_ROWS:
        more.append(f"first {HEAD_ROWS} of {rows:,} rows")
    if cols > HEAD_COLUMNS:
        more.append(f"first {HEAD_COLUMNS} of {cols:,} columns")
    note = f'<div class="cairn-note">{rows:,} rows × {cols:,} columns'
    note += f" ({', '.join(more)})</div>" if more else "</div>"
    return note + table_html(headers, body)


def _series(s: Any) -> str:
    head = s.iloc[:HEAD_ROWS]
    body = [[str(i), str(v)] for i, v in zip(head.index, head.tolist())]
    note = f'<div class="cairn-note">{len(s):,} values, dtype {html.escape(str(s.dtype))}</div>'
    return note + table_html(["", str(s.name) if s.name is not None else ""], body)


def _ndarray(a: Any) -> str:
    import numpy as np  # present: the value is an ndarray

    text = np.array2string(a, threshold=100, edgeitems=3, max_line_width=100)
    note = f'<div class="cairn-note">shape {a.shape}, dtype {html.escape(str(a.dtype))}</div>'
    return note + _pre(text)


def preview_html(value: Any) -> str:
    """A short HTML rendering of any value; never raises."""
    try:
        kind = _kind(value)
        if kind == "pandas.DataFrame":
            return _dataframe(value)
        if kind == "pandas.Series":
            return _series(value)
        if kind == "numpy.ndarray":
            return _ndarray(value)
        if isinstance(value, str):
            return _pre(value)
        if isinstance(value, (bytes, bytearray)):
            return f'<div class="cairn-note">{len(value):,} bytes</div>' + _pre(repr(bytes(value[:200])))
        if isinstance(value, (list, tuple, set, frozenset, dict)):
            note = f'<div class="cairn-note">{len(value):,} items</div>'
            return note + _pre(_repr.repr(value))
        return _pre(_repr.repr(value))
    except Exception as e:  # noqa: BLE001 - a preview must never fail the page
        return f'<div class="cairn-error">no preview: {html.escape(type(e).__name__)}: {html.escape(str(e))}</div>'
