"""Fitting text into a fixed number of terminal cells (wide characters count double)."""

from __future__ import annotations

from rich.cells import cell_len, set_cell_size

ELLIPSIS = "…"


def ellipsize(text: str, width: int) -> str:
    """``text`` cut to ``width`` cells, ending in an ellipsis when something was cut."""
    if cell_len(text) <= width:
        return text
    if width <= 0:
        return ""
    return set_cell_size(text, width - 1) + ELLIPSIS
