"""bench/run.py's --compare summary: which cases are below 10x Metaflow."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import run  # bench/run.py
from cases import BY_NAME


def _results(cairn: float, metaflow: float | None) -> dict:
    out = {"cairn": [{"wall_s": cairn}]}
    if metaflow is not None:
        out["metaflow"] = [{"wall_s": metaflow}]
    return out


def test_the_summary_names_the_cases_below_10x_with_their_ratios():
    cases = [BY_NAME["hello"], BY_NAME["read"], BY_NAME["tasks-10k"], BY_NAME["numpy"]]
    results = {"hello": _results(0.1, 1.2), "read": _results(0.2, 0.5), "tasks-10k": _results(0.3, 4.5),
               "numpy": _results(1.4, None)}
    assert run.below_10x(cases, results) == [
        "Below 10x Metaflow: read (2.5x) (see each case's floor in docs/performance.md)."]


def test_the_summary_says_when_every_compared_case_is_at_least_10x():
    cases = [BY_NAME["hello"], BY_NAME["numpy"]]
    assert run.below_10x(cases, {"hello": _results(0.1, 1.2), "numpy": _results(1.4, None)}) == [
        "Every case compared is at least 10x Metaflow."]
    assert run.below_10x([BY_NAME["numpy"]], {"numpy": _results(1.4, None)}) == []
