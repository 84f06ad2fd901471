"""Launch to fully painted main screen, headless (Textual's test harness), per size.

Each run is a fresh interpreter (`benchmarks.app_child`), so the figure includes what a
user's launch pays: imports, connect, inventory load, first paint of every row.
"""

from __future__ import annotations

from benchmarks import simproc
from benchmarks.app_child import spawn
from benchmarks.common import Context, Figure, Results, Target, median, require

TARGET_LARGE = Target("<", 1.5, "< 1.5 s")


def specs(ctx: Context) -> list[Figure]:
    return [
        Figure(
            f"tui.launch.{s.tag}",
            f"launch to fully painted main screen, {s.words}",
            "s",
            TARGET_LARGE if s == ctx.large else None,
        )
        for s in ctx.sizes
    ] + [
        Figure(
            f"tui.complete.{ctx.large.tag}",
            f"launch until every VM's disks and nics are in too, {ctx.large.words}",
            "s",
        )
    ]


def measure(ctx: Context, out: Results) -> None:
    require("poolctl.tui.app", "the TUI", "create_app")
    for size in ctx.sizes:
        with simproc.external(size) as sim:
            runs = [spawn(sim.url, size.vms, "tui") for _ in range(ctx.runs)]
        took = [r["painted_s"] for r in runs]
        out.set(
            f"tui.launch.{size.tag}",
            median(took),
            samples=took,
            note=f"median of {ctx.runs}; fresh interpreter each, simulator in its own process",
        )
        if size == ctx.large:
            complete = [r["complete_s"] for r in runs]
            out.set(
                f"tui.complete.{size.tag}",
                median(complete),
                samples=complete,
                note="the Xen backend paints first and reads VBDs, VDIs and VIFs after (staged load)",
            )
