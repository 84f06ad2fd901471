"""What the migrate dialog says of the highlighted destination: with storage motion, what its
move copies and the estimate; and why Enter starts nothing yet."""

from __future__ import annotations

from collections.abc import Callable

from poolctl.migration.storage import CopyRate
from poolctl.model import MigrationCheck
from poolctl.safe_text import shown, shown_line


def storage_words(name: str, check: MigrationCheck | None, rate: Callable[[], CopyRate]) -> str:
    """What the move to the host ``name`` copies and how long it may take, or why not; ``check``
    None: its check for the disks' SRs as they stand is still under way. ``rate`` (it may read
    the audit log) is asked only when something is copied."""
    if check is None:
        return f"checking the disks' SRs on {shown(name)}…"
    if not check.ok:
        return f"cannot move to {shown(name)} so: " + "; ".join(shown_line(p) for p in check.problems)
    if not check.copies:
        return f"no disk is copied: {shown(name)} sees the SR of every disk"
    # the rows above say where each disk goes; the backend's last line is the total and estimate
    return (
        f"copy {shown_line(check.copies[-1])} ({shown_line(rate().source)}); "
        "the disks first, then the memory (predicted below)"
    )


def not_started(checked: int, destinations: int, usable: int) -> str:
    """Why Enter starts nothing when no usable host is highlighted."""
    if checked < destinations and not usable:
        return "Still checking the hosts…"
    return "Choose a usable host (marked ✓)." if usable else "No host can take this VM now (see the reasons above)."
