"""XAPI calls the Xen backend makes: to load the inventory (per size) and while idle.

The simulator runs in this process so its per-method call counters can be read.
Loading must cost the same number of calls at 12 VMs as at 10,000 (one
get_all_records per class, never one call per object); idle, only the event.from
long-poll may run.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

from benchmarks import simproc
from benchmarks.common import Context, Figure, Results, Target, median, require

IDLE_SETTLE_S = 0.5  # after the watcher's full read: let its follow-up calls go by
WATCH_READY_TIMEOUT_S = 300


def specs(ctx: Context) -> list[Figure]:
    figs = [
        Figure(f"xapi.load_calls.{s.tag}", f"XAPI calls to connect + load inventory, {s.words}", "calls")
        for s in ctx.sizes
    ]
    figs += [
        Figure(
            "xapi.load_growth",
            f"XAPI load calls growth, {ctx.small.vms:,} -> {ctx.large.vms:,} VMs",
            "calls",
            Target("==", 0, "0 (no per-object calls)"),
        ),
        Figure("xapi.load_time", f"backend connect + inventory() wall time, {ctx.large.words}", "s"),
        Figure("xapi.load_time.xmlrpc", f"the same, pool without JSON-RPC (XML-RPC only), {ctx.large.words}", "s"),
        Figure(
            "xapi.idle_calls_per_s",
            "XAPI calls/s while idle (watching), all methods",
            "calls/s",
            Target("<", 0.5, "~0 (< 0.5/s)"),
        ),
        Figure("xapi.idle_other_calls", "XAPI calls while idle other than event.from", "calls", Target("==", 0, "0")),
    ]
    return figs


def counters(server) -> Counter:
    stats = server.stats
    snapshot = getattr(stats, "snapshot", None)  # the simulator's locked copy, when it has one
    return Counter(snapshot() if snapshot else dict(stats))


def delta(after: Counter, before: Counter) -> Counter:
    return Counter({k: after[k] - before.get(k, 0) for k in after if after[k] - before.get(k, 0)})


def describe(calls: Counter) -> str:
    return ", ".join(f"{m} x{n}" for m, n in sorted(calls.items()))


def load_once(server):
    """(calls, seconds, backend) for one connect + inventory(); the caller closes the backend."""
    from poolctl.backends.xen import XenBackend

    before = counters(server)
    backend = XenBackend(simproc.pool_config(server.url))
    t0 = time.perf_counter()
    backend.connect()
    inv = backend.inventory()
    took = time.perf_counter() - t0
    return delta(counters(server), before), took, backend, inv


def measure(ctx: Context, out: Results) -> None:
    require("poolctl.sim.xapi", "the XAPI simulator", "Simulator")
    require("poolctl.backends.xen", "the Xen backend", "XenBackend")

    totals: dict[str, int] = {}
    for size in ctx.sizes:
        with simproc.in_process(size) as (sim, server):
            calls, _took, backend, inv = load_once(server)
            backend.close()
            if len(inv.vms) < size.vms:
                raise AssertionError(f"inventory at {size.tag} has {len(inv.vms)} VMs, expected {size.vms}")
            totals[size.tag] = sum(calls.values())
            out.set(f"xapi.load_calls.{size.tag}", totals[size.tag], note=describe(calls))
            if size == ctx.large:
                measure_load_time(ctx, out, sim, server)
                measure_idle(ctx, out, server)
    if ctx.small == ctx.large:
        out.unavailable("xapi.load_growth", "needs two sizes (--sizes SMALL,LARGE)")
    else:
        out.set("xapi.load_growth", totals[ctx.large.tag] - totals[ctx.small.tag])


def measure_load_time(ctx: Context, out: Results, sim, server) -> None:
    for key, jsonrpc in (("xapi.load_time", True), ("xapi.load_time.xmlrpc", False)):
        sim.jsonrpc = jsonrpc  # False: /jsonrpc answers 404, as XAPI before JSON-RPC did
        took = []
        try:
            for _ in range(ctx.runs):
                _calls, t, backend, _inv = load_once(server)
                used = backend.connector.jsonrpc
                backend.close()
                took.append(t)
        finally:
            sim.jsonrpc = True
        if used is not jsonrpc:
            raise AssertionError(f"the backend read over {'JSON' if used else 'XML'}-RPC, expected the other")
        rpc = "the bulk read over JSON-RPC" if jsonrpc else "every call over XML-RPC"
        out.set(key, median(took), samples=took, note=f"{rpc}; simulator in this process (shares the GIL)")


def measure_idle(ctx: Context, out: Results, server) -> None:
    _calls, _t, backend, _inv = load_once(server)
    connected = threading.Event()

    def on_state(state) -> None:
        if state.status == "connected":
            connected.set()

    try:
        backend.watch(lambda change: None, on_state)
        # The watcher starts with a full read of its own; idle starts once it says connected.
        if not connected.wait(WATCH_READY_TIMEOUT_S):
            raise TimeoutError(f"the event watcher did not report connected within {WATCH_READY_TIMEOUT_S} s")
        time.sleep(IDLE_SETTLE_S)
        before = counters(server)
        time.sleep(ctx.window_s)
        calls = delta(counters(server), before)
    finally:
        backend.close()
    total = sum(calls.values())
    other = sum(n for m, n in calls.items() if m != "event.from")
    note = f"{ctx.window_s:.0f} s window: {describe(calls) or 'no calls'}"
    out.set("xapi.idle_calls_per_s", total / ctx.window_s, note=note)
    out.set("xapi.idle_other_calls", other)
