"""ellipsize: the one way the TUI cuts text to a column."""

from __future__ import annotations

from rich.cells import cell_len

from poolctl.tui.widgets.cells import ellipsize


def test_text_that_fits_is_left_alone() -> None:
    assert ellipsize("web-01", 6) == "web-01"
    assert ellipsize("", 0) == ""


def test_cut_text_ends_in_an_ellipsis_within_the_width() -> None:
    assert ellipsize("database-primary", 8) == "databas…"
    assert ellipsize("ab", 1) == "…"
    assert ellipsize("ab", 0) == ""


def test_wide_characters_count_as_two_cells() -> None:
    cut = ellipsize("数据库服务器", 6)
    assert cell_len(cut) == 6 and cut.endswith("…")
