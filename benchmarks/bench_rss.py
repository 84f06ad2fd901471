"""Peak RSS at the large size: poolctl's side in a child process, the simulator's apart.

The simulator runs as `poolctl simulate` in its own process so neither figure holds
the other's memory.
"""

from __future__ import annotations

from benchmarks import simproc
from benchmarks.app_child import spawn
from benchmarks.common import Context, Figure, Results, Target, Unavailable, require

TARGET = Target("<", 200, "< 200 MB")


def specs(ctx: Context) -> list[Figure]:
    w = ctx.large.words
    return [
        Figure("rss.app", f"peak RSS, TUI + backend (headless, loaded), {w}", "MB", TARGET),
        Figure("rss.backend", f"peak RSS, backend + inventory store only, {w}", "MB"),
        Figure("rss.simulator", f"peak RSS, simulator process, {w}", "MB"),
    ]


def measure(ctx: Context, out: Results) -> None:
    require("poolctl.backends.xen", "the Xen backend", "XenBackend")
    big = ctx.large
    with simproc.external(big) as sim:
        res = spawn(sim.url, big.vms, "backend")
        out.set("rss.backend", res["peak_kb"] / 1024)
        try:
            res = spawn(sim.url, big.vms, "tui")
            out.set(
                "rss.app",
                res["peak_kb"] / 1024,
                note=f"painted after {res['painted_s']:.2f} s, every VM's devices in after {res['complete_s']:.2f} s",
            )
        except Unavailable as exc:
            out.unavailable("rss.app", str(exc))
        out.set(
            "rss.simulator", sim.status("VmHWM") / 1024, note=f"`poolctl simulate` ready after {sim.started_s:.1f} s"
        )
