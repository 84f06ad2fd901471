"""Cursor moves repaint only the old and new cursor rows: the rest must still be right on screen."""

from __future__ import annotations

import pytest

from poolctl.tui.app import create_app
from tests.support.tui import loaded

pytestmark = pytest.mark.timeout(60)


def highlighted_rows(app) -> list[int]:
    """Screen rows of the VM list painted in the cursor's colours (what the terminal shows,
    composed from the widget's cached lines, so a row left stale would still show)."""
    vm_list = app.main_screen.vm_list
    assert vm_list.get_component_rich_style("vm-list--cursor").reverse  # the theme's cursor look
    region = vm_list.content_region
    rows = []
    for y, strip in enumerate(app.screen._compositor.render_strips()):
        if region.y < y < region.bottom:  # below the header row
            inside = strip.crop(region.x, region.right)
            if any(seg.style is not None and seg.style.reverse and seg.text.strip() for seg in inside):
                rows.append(y - region.y - 1)
    return rows


async def test_moving_the_cursor_leaves_exactly_one_highlighted_row(lab):
    app = create_app([lab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        vm_list = app.main_screen.vm_list
        vm_list.focus()
        await pilot.pause()
        assert vm_list.row_count >= 4
        assert highlighted_rows(app) == [0]
        for key, expected in (("down", 1), ("down", 2), ("down", 3), ("up", 2), ("home", 0), ("end", None)):
            await pilot.press(key)
            await pilot.pause()
            cursor = vm_list.cursor_index
            assert expected is None or cursor == expected
            assert highlighted_rows(app) == [cursor - int(vm_list.scroll_offset.y)], key
