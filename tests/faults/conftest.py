"""The fault suite's fixtures and hooks: tests/python's `runner`, the trial
totals printed at the end ("kill trials 50, failures 0"), and the tail of
the engine log of a failed test's runs."""

from __future__ import annotations

import pytest

from .faultlib import TRIALS, engine_log_tail, shared

runner = shared.runner  # the same fixture as tests/python's


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not TRIALS:
        return
    terminalreporter.section("fault trials")
    for kind, c in sorted(TRIALS.items()):
        terminalreporter.write_line(f"{kind} trials {c['trials']}, failures {c['failures']}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        r = item.funcargs.get("runner")
        tail = engine_log_tail(r.root) if r is not None else ""
        if tail:
            report.sections.append(("engine log", tail))
