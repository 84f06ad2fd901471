"""The simulator's own share: generating a large pool, and serving VM.get_all_records.

These are not poolctl's costs; they tell how much of the other figures is the simulator's.
"""

from __future__ import annotations

import time

from benchmarks import simproc
from benchmarks.common import Context, Figure, Results, median, require


def specs(ctx: Context) -> list[Figure]:
    big = ctx.large
    return [
        Figure("sim.generate", f"simulator: generate {big.words}", "s"),
        Figure("sim.get_all_records_vm", f"simulator: serve VM.get_all_records, {big.vms:,} VMs "
               "(raw XenAPI client, incl. XML-RPC parse)", "s"),
    ]


def measure(ctx: Context, out: Results) -> None:
    Simulator = require("poolctl.backends.xapisim", "the XAPI simulator", "Simulator")

    big = ctx.large
    gen = []
    for _ in range(ctx.runs):
        t0 = time.perf_counter()
        Simulator.generate(hosts=big.hosts, vms=big.vms, password=simproc.PASSWORD)
        gen.append(time.perf_counter() - t0)
    out.set("sim.generate", median(gen), samples=gen)

    with simproc.in_process(big) as (_sim, server):
        session = simproc.login(server.url)
        try:
            serve = []
            for _ in range(ctx.runs):
                t0 = time.perf_counter()
                records = session.xenapi.VM.get_all_records()
                serve.append(time.perf_counter() - t0)
        finally:
            simproc.logout(session)
    out.set("sim.get_all_records_vm", median(serve), samples=serve,
            note=f"{len(records):,} VM records (VMs + templates + control domains as the simulator models them)")
