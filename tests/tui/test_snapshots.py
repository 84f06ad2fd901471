"""Snapshot tests of the main screens at 120x40 and 80x24 (regenerate: --snapshot-update)."""

from __future__ import annotations

import pytest

from tests.tui.scenes import SCENES

pytestmark = pytest.mark.timeout(120)

SIZES = [(120, 40), (80, 24)]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("scene", list(SCENES))
def test_screen(snap_compare, snapshot_lab, scene, size):
    s = SCENES[scene]
    assert snap_compare(s.app(snapshot_lab.url), run_before=s.prepare, terminal_size=size)
