"""Wall time of `poolctl --version` and `poolctl --help`: a fresh process each run."""

from __future__ import annotations

import subprocess
import time

from benchmarks import simproc
from benchmarks.common import Context, Figure, Results, Target, median

TARGET = Target("<", 0.150, "< 150 ms")
RUNS_FULL = 10


def specs(ctx: Context) -> list[Figure]:
    return [
        Figure("cli.version", "`poolctl --version` wall time (median)", "s", TARGET),
        Figure("cli.help", "`poolctl --help` wall time (median)", "s", TARGET),
    ]


def measure(ctx: Context, out: Results) -> None:
    runs = 2 if ctx.quick else max(RUNS_FULL, ctx.runs)
    cmd = simproc.poolctl_command()
    for key, flag in (("cli.version", "--version"), ("cli.help", "--help")):
        times = []
        for _ in range(runs + 1):  # the first run warms the page cache and .pyc files; dropped
            t0 = time.perf_counter()
            proc = subprocess.run(cmd + [flag], capture_output=True, text=True, timeout=60)
            times.append(time.perf_counter() - t0)
            if proc.returncode != 0:
                last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
                out.unavailable(key, f"`poolctl {flag}` exits {proc.returncode}: {last}")
                break
        else:
            times = times[1:]
            out.set(key, median(times), samples=times, note=f"{runs} runs of {' '.join(cmd[-1:])} {flag}")
