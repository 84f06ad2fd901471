"""Migrations in the app: `m` → checks → dialog → a panel per move (``center``); many moves at
once (evacuate, bulk move, restore) in ``batches``; a hang-up mid-move in ``hangup``.

Nothing is imported here: the app's first frame does not need the migration modules (~40 ms
of its start-up), and ``hangup`` is imported at start. ``MigrationCenter`` is still importable
from the package; the app makes its center on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from poolctl.tui.migrations.center import MigrationCenter

__all__ = ["MigrationCenter"]


def __getattr__(name: str) -> Any:
    if name == "MigrationCenter":
        from poolctl.tui.migrations.center import MigrationCenter

        return MigrationCenter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
