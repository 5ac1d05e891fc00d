"""Card components (Metaflow's `metaflow.cards` names and arguments): each
renders itself to an HTML fragment; `update` changes it for live cards.
Objects from matplotlib, PIL, pandas and altair are used through their own
methods, so none of those libraries is imported here."""

from __future__ import annotations

import base64
import html
import io
import json
import traceback
from typing import Any

from .markdown import markdown_to_html
from .preview import _cell, preview_html, table_html
from .vega import vega_html


class CardComponent:
    """Base of every component: `render()` returns an HTML fragment."""

    # Set by current.card.append(c, id=...).
    component_id: str | None = None

    def render(self) -> str:
        raise NotImplementedError

    def _html(self) -> str:
        """render() inside a container; a failing component shows its error."""
        try:
            inner = self.render()
        except Exception as e:  # noqa: BLE001 - one bad component must not lose the card
            inner = Error(e, title=f"{type(self).__name__} failed to render").render()
        cid = f' data-component-id="{html.escape(self.component_id)}"' if self.component_id else ""
        return f'<div class="cairn-component cairn-{type(self).__name__.lower()}"{cid}>{inner}</div>'


class Markdown(CardComponent):
    def __init__(self, text: str = ""):
        self.text = text

    def update(self, text: str = "") -> None:
        self.text = text

    def render(self) -> str:
        return markdown_to_html(self.text)


class Table(CardComponent):
    """Rows of cells; a cell may be a value or another component."""

    def __init__(self, data: list[list[Any]] | None = None, headers: list[str] | None = None,
                 disable_updates: bool = False):
        self.data = [list(row) for row in (data or [])]
        self.headers = list(headers or [])
        self.disable_updates = disable_updates

    @classmethod
    def from_dataframe(cls, dataframe: Any, truncate: bool = True) -> Table:
        """A table of a pandas DataFrame (its first 100 rows if `truncate`)."""
        df = dataframe.head(100) if truncate else dataframe
        headers = [""] + [str(c) for c in df.columns]
        rows = [[idx, *row] for idx, row in zip(df.index, df.itertuples(index=False))]
        return cls(rows, headers=headers)

    def update(self, data: list[list[Any]] | None = None) -> None:
        if not self.disable_updates:
            self.data = [list(row) for row in (data or [])]

    def render(self) -> str:
        rows = [[c._html() if isinstance(c, CardComponent) else _cell(c) for c in row]
                for row in self.data]
        return table_html([_cell(h) for h in self.headers], rows, escaped=True)


_IMAGE_TYPES = [(b"\x89PNG", "image/png"), (b"\xff\xd8", "image/jpeg"), (b"GIF8", "image/gif"),
                (b"RIFF", "image/webp"), (b"<svg", "image/svg+xml"), (b"<?xml", "image/svg+xml")]


class Image(CardComponent):
    """An image from its encoded bytes (PNG, JPEG, GIF, WebP or SVG)."""

    def __init__(self, src: bytes | None = None, label: str | None = None,
                 disable_updates: bool = False):
        self.src = bytes(src or b"")
        self.label = label
        self.disable_updates = disable_updates

    @classmethod
    def from_matplotlib(cls, plot: Any, label: str | None = None) -> Image:
        """A PNG of a matplotlib Figure or Axes."""
        figure = getattr(plot, "figure", None) or plot
        if hasattr(figure, "get_figure") and not hasattr(figure, "savefig"):
            figure = figure.get_figure()
        buf = io.BytesIO()
        figure.savefig(buf, format="png", bbox_inches="tight")
        return cls(buf.getvalue(), label=label)

    @classmethod
    def from_pil_image(cls, pilimage: Any, label: str | None = None) -> Image:
        buf = io.BytesIO()
        pilimage.save(buf, format="PNG")
        return cls(buf.getvalue(), label=label)

    def update(self, image: Any, label: str | None = None) -> None:
        if self.disable_updates:
            return
        if isinstance(image, (bytes, bytearray)):
            self.src = bytes(image)
        elif hasattr(image, "savefig") or hasattr(image, "get_figure"):
            self.src = Image.from_matplotlib(image).src
        else:
            self.src = Image.from_pil_image(image).src
        if label is not None:
            self.label = label

    def render(self) -> str:
        head = self.src[:16].lstrip()
        mime = next((m for magic, m in _IMAGE_TYPES if head.startswith(magic)), None)
        if mime is None:
            return Error(ValueError("not an image: expected PNG, JPEG, GIF, WebP or SVG bytes"),
                         title="Image").render()
        data = base64.b64encode(self.src).decode()
        label = f"<figcaption>{html.escape(self.label)}</figcaption>" if self.label else ""
        alt = html.escape(self.label or "image")
        return f'<figure><img alt="{alt}" src="data:{mime};base64,{data}">{label}</figure>'


class Artifact(CardComponent):
    """Any value, previewed as the default card does."""

    def __init__(self, artifact: Any, name: str | None = None, compressed: bool = True):
        self.artifact = artifact
        self.name = name
        self.compressed = compressed

    def update(self, artifact: Any) -> None:
        self.artifact = artifact

    def render(self) -> str:
        title = f'<div class="cairn-name">{html.escape(self.name)}</div>' if self.name else ""
        return title + preview_html(self.artifact)


class VegaChart(CardComponent):
    """A Vega-Lite chart; see vega.py for what is drawn offline."""

    def __init__(self, spec: dict[str, Any], show_controls: bool = False):
        self.spec = spec
        self.show_controls = show_controls

    @classmethod
    def from_altair_chart(cls, altair_chart: Any) -> VegaChart:
        return cls(altair_chart.to_dict())

    def update(self, spec: dict[str, Any] | None = None) -> None:
        if spec is not None:
            self.spec = spec

    def render(self) -> str:
        return vega_html(self.spec)


class ProgressBar(CardComponent):
    def __init__(self, max: float = 100, label: str | None = None, value: float = 0,
                 unit: str | None = None, metadata: str | None = None):
        self.max = max
        self.label = label
        self.value = value
        self.unit = unit
        self.metadata = metadata

    def update(self, new_value: float, metadata: str | None = None) -> None:
        self.value = new_value
        if metadata is not None:
            self.metadata = metadata

    def render(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        label = f"<div>{html.escape(self.label)}</div>" if self.label else ""
        meta = f'<div class="cairn-note">{html.escape(self.metadata)}</div>' if self.metadata else ""
        return (f'{label}<progress max="{float(self.max)}" value="{float(self.value)}"></progress>'
                f' <span class="cairn-progress-text">{html.escape(f"{self.value:g}/{self.max:g}{unit}")}'
                f"</span>{meta}")


class Error(CardComponent):
    """An exception with its traceback."""

    def __init__(self, exception: BaseException, title: str | None = None):
        self.exception = exception
        self.title = title

    def render(self) -> str:
        e = self.exception
        if isinstance(e, BaseException):
            text = "".join(traceback.format_exception(type(e), e, e.__traceback__))
        else:
            text = str(e)
        title = html.escape(self.title or "Error")
        return f'<div class="cairn-error"><strong>{title}</strong><pre>{html.escape(text)}</pre></div>'


class Raw(CardComponent):
    """Trusted HTML from cairn itself (the default card's sections)."""

    def __init__(self, markup: str):
        self.markup = markup

    def render(self) -> str:
        return self.markup


def json_block(value: Any) -> str:
    return f'<pre class="cairn-value">{html.escape(json.dumps(value, indent=2, default=str))}</pre>'
