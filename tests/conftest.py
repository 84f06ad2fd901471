"""Suite-wide: a plain `pytest` runs everything it can as the user running it.

The lab tests (tests/lab, marked ``lab``) build network namespaces and run libvirt daemons:
without root they could only fail, so they are deselected and one line in the summary says
why and how to run them. As root nothing is deselected.
"""

from __future__ import annotations

import os

import pytest

# Helpers shared by test modules assert too: let pytest explain their failures.
pytest.register_assert_rewrite("tests.support")

LAB_DESELECTED = pytest.StashKey[int]()


def lab_hint(count: int) -> str:
    return (
        f"{count} lab test(s) deselected: they need root (network namespaces, libvirt daemons); "
        "run them as root with scripts/test tests/lab"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    lab = [item for item in items if item.get_closest_marker("lab")]
    if not lab:
        return
    config.hook.pytest_deselected(items=lab)
    items[:] = [item for item in items if not item.get_closest_marker("lab")]
    config.stash[LAB_DESELECTED] = len(lab)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    count = config.stash.get(LAB_DESELECTED, 0)
    if count:
        terminalreporter.write_line(lab_hint(count), yellow=True)
