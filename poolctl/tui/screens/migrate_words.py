"""What the migrate dialog says of a destination: its row in the host list (name, free memory,
the pre-check's verdict) and, with storage motion, what its move copies and the estimate."""

from __future__ import annotations

from collections.abc import Callable

from rich.table import Table
from rich.text import Text

from poolctl.format import size
from poolctl.migration.cross_pool import Destination
from poolctl.migration.storage import CopyRate
from poolctl.model import MigrationCheck
from poolctl.safe_text import shown, shown_line


def host_prompt(dest: Destination, check: MigrationCheck | None) -> Table:
    """One host: name, free memory and the verdict; long reasons wrap in their own column."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(width=16, no_wrap=True, overflow="ellipsis")
    grid.add_column(width=14, no_wrap=True)
    grid.add_column(ratio=1)
    if check is None:
        verdict = Text("… checking")
    elif check.ok and check.copy_bytes:
        verdict = Text(f"✓ usable, copies {size(check.copy_bytes)} of disks")
    elif check.ok:
        verdict = Text("✓ usable")
    elif len(check.problems) == 1:
        verdict = Text("✗ " + shown_line(check.problems[0]))
    else:
        verdict = Text("✗ cannot take it:\n" + "\n".join(f"  ✗ {shown_line(p)}" for p in check.problems))
    grid.add_row(Text(shown(dest.label)), Text(f"free {size(dest.host.memory_free):>9}"), verdict)
    return grid


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
