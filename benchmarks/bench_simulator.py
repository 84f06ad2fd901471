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
        Figure("sim.vm_records.jsonrpc", f"simulator: produce VM.get_all_records, JSON-RPC, {big.vms:,} VMs", "s"),
        Figure("sim.vm_records.xmlrpc", f"simulator: produce VM.get_all_records, XML-RPC, {big.vms:,} VMs", "s"),
    ]


def measure(ctx: Context, out: Results) -> None:
    Simulator = require("poolctl.sim.xapi", "the XAPI simulator", "Simulator")

    big = ctx.large
    gen = []
    for _ in range(ctx.runs):
        t0 = time.perf_counter()
        Simulator.generate(hosts=big.hosts, vms=big.vms, password=simproc.PASSWORD)
        gen.append(time.perf_counter() - t0)
    out.set("sim.generate", median(gen), samples=gen)

    # Server side only (copy the records under the lock, marshal the reply), caches warm as
    # `poolctl simulate` leaves them: the simulator's share of every load figure.
    wire = require("poolctl.sim.xapi.wire", "the simulator's wire encoding")
    sim = Simulator.generate(hosts=big.hosts, vms=big.vms, password=simproc.PASSWORD)
    sim.warm()
    for proto, encode in (("jsonrpc", lambda r: wire.json_result(r, 1, True)), ("xmlrpc", wire.xml_success)):
        took, size = [], 0
        for _ in range(ctx.runs):
            t0 = time.perf_counter()
            size = len(encode(sim.db.all_records("VM")))
            took.append(time.perf_counter() - t0)
        out.set(
            f"sim.vm_records.{proto}",
            median(took),
            samples=took,
            note=f"{size / 1e6:.1f} MB reply, {len(sim.db.refs('VM')):,} VM records (with templates and dom0s)",
        )
