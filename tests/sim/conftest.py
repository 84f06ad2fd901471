"""Shows the XAPI conformance figures (tests/sim/test_conformance.py) in the terminal summary."""

from __future__ import annotations

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    from .test_conformance import COVERAGE_KEY

    report = config.stash.get(COVERAGE_KEY, None)
    if report:
        terminalreporter.section("XAPI simulator conformance")
        terminalreporter.write_line(report)
