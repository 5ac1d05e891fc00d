"""Each card component's rendering, the value previews, `current.card`'s
choice of card, and live refreshes (no flow run needed)."""

from __future__ import annotations

import io
import os

import numpy as np
import pandas as pd
from cairn.cards import Artifact, Error, Image, Markdown, ProgressBar, Table, VegaChart
from cairn.cards.preview import preview_html
from cairn.cards.runtime import CardCollector, CardSession, StepCard

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 16


def test_markdown_renders_markup_and_escapes_html():
    out = Markdown("# Title\n\nSome **bold**, *em* and `x<y`.\n\n- a\n- b\n\n[ok](https://e.x) [bad](javascript:alert(1))\n\n<script>alert(1)</script>").render()
    assert "<h1>Title</h1>" in out and "<strong>bold</strong>" in out and "<em>em</em>" in out
    assert "<code>x&lt;y</code>" in out and "<ul>\n<li>a</li>\n<li>b</li>\n</ul>" in out
    assert '<a href="https://e.x">ok</a>' in out and "javascript:" not in out
    assert "<script>" not in out and "&lt;script&gt;" in out


def test_markdown_update_changes_the_text():
    m = Markdown("one")
    m.update("two")
    assert "two" in m.render() and "one" not in m.render()


def test_table_cells_values_and_components():
    out = Table([[1, "<i>"], [ProgressBar(max=4, value=2), None]], headers=["n", "v"]).render()
    assert "<th>n</th><th>v</th>" in out and "<td>&lt;i&gt;</td>" in out
    assert '<progress max="4.0" value="2.0">' in out


def test_table_from_dataframe_keeps_index_and_columns():
    t = Table.from_dataframe(pd.DataFrame({"a": [1, 2]}, index=["x", "y"]))
    assert t.headers == ["", "a"] and t.data == [["x", 1], ["y", 2]]
    t.update([[9]])
    assert t.data == [[9]]


def test_image_from_bytes_matplotlib_and_pil_without_importing_them():
    class Figure:  # stands for a matplotlib Figure: only savefig is used
        def savefig(self, buf: io.BytesIO, format: str, bbox_inches: str) -> None:
            assert format == "png"
            buf.write(PNG)

    class PilImage:
        def save(self, buf: io.BytesIO, format: str) -> None:
            buf.write(PNG)

    for img in (Image(PNG, label="l"), Image.from_matplotlib(Figure()), Image.from_pil_image(PilImage())):
        assert 'src="data:image/png;base64,' in img.render()
    assert "not an image" in Image(b"plain text").render()


def test_artifact_previews_like_the_default_card():
    assert "shape (3,), dtype int64" in Artifact(np.arange(3), name="arr").render()
    assert "arr" in Artifact(1, name="arr").render()


def test_vega_bar_chart_draws_svg_and_other_specs_show_their_json():
    spec = {"mark": "bar", "data": {"values": [{"k": "a", "v": 1}, {"k": "b", "v": 3}]},
            "encoding": {"x": {"field": "k"}, "y": {"field": "v"}}}
    out = VegaChart(spec).render()
    assert out.count("<rect") == 2 and "<svg" in out
    line = VegaChart({**spec, "mark": {"type": "line"}}).render()
    assert "<polyline" in line
    other = VegaChart({"mark": "arc", "data": {"url": "x.csv"}}).render()
    assert "shown as its spec" in other and "&quot;arc&quot;" in other


def test_vega_from_altair_uses_to_dict():
    class Chart:
        def to_dict(self) -> dict:
            return {"mark": "point"}

    assert VegaChart.from_altair_chart(Chart()).spec == {"mark": "point"}


def test_progress_bar_update():
    p = ProgressBar(max=10, label="epochs", unit="ep")
    p.update(3, metadata="loss 0.1")
    out = p.render()
    assert 'value="3.0"' in out and "3/10 ep" in out and "loss 0.1" in out


def test_error_shows_type_message_and_traceback():
    try:
        raise ValueError("bad <thing>")
    except ValueError as e:
        out = Error(e, title="Oops").render()
    assert "Oops" in out and "ValueError: bad &lt;thing&gt;" in out and "Traceback" in out


def test_a_component_that_raises_shows_its_error_in_place():
    class Broken(Markdown):
        def render(self) -> str:
            raise RuntimeError("nope")

    out = Broken()._html()
    assert "Broken failed to render" in out and "RuntimeError: nope" in out


def test_previews_of_common_values():
    assert "42" in preview_html(42)
    assert "&lt;tag&gt;" in preview_html("<tag>")
    assert "3 items" in preview_html([1, 2, 3]) and "2 items" in preview_html({"a": 1, "b": 2})
    assert "5 bytes" in preview_html(b"hello")
    long = preview_html("x" * 10_000)
    assert "more characters" in long and len(long) < 3000
    frame = preview_html(pd.DataFrame({"a": range(1_000)}))
    assert "first 10 of 1,000 rows" in frame and frame.count("<tr>") == 11
    assert "3 values" in preview_html(pd.Series([1, 2, 3]))


def test_current_card_picks_the_default_editable_card():
    blank, html_card = StepCard({"type": "blank"}, 0, None), StepCard({"type": "html", "id": "h"}, 1, None)
    cc = CardCollector([blank, html_card])
    cc.append(Markdown("a"), id="m")
    assert len(blank) == 1 and cc.components["m"] is blank.components["m"]
    named = [StepCard({"type": "default", "id": "x"}, 0, None), StepCard({"type": "blank", "id": "y"}, 1, None)]
    cc = CardCollector(named)
    cc.append(Markdown("dropped"))  # ambiguous: warns, adds nothing
    cc["y"].extend([Markdown("b"), Markdown("c")])
    assert [len(c) for c in named] == [0, 2]
    cc["y"].clear()
    assert len(named[1]) == 0


def test_refresh_writes_the_live_card_file(tmp_path):
    session = CardSession([{"type": "blank"}], {"root": str(tmp_path), "run_id": 7, "task_id": 3,
                                                "attempt": 0, "flow_name": "F", "step_name": "s"})
    bar = ProgressBar(max=10)
    session.cards[0].append(bar)
    bar.update(4)
    session.cards[0].refresh()
    path = tmp_path / "live" / "7" / "3.0.0.html"
    assert 'value="4.0"' in path.read_text()
    bar.update(9)
    session.cards[0].refresh()
    assert 'value="9.0"' in path.read_text()
    session.remove_live()
    assert not os.path.exists(path)
