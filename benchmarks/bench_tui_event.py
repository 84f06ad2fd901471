"""Event-to-screen latency: a VM's power state changed by a second XAPI client (a raw
XenAPI session, as another admin would) until the VM's row shows the new state.

The VM is the one on the list's first row, so its row is on screen. From the moment the
second client sends the call until the store holds the new state and a screen refresh
has completed after it; the call's own duration is noted apart.
"""

from __future__ import annotations

import asyncio
import time

from benchmarks import simproc, tui_harness
from benchmarks.common import Context, Figure, Results, Target, median, require

EVENT_TIMEOUT_S = 30
WARMUP_TIMEOUT_S = 180  # the first change waits for the watcher's full read (tens of s at 10k)
SETTLE_S = 0.3  # between toggles: let the previous change's follow-up events pass

# model power state -> (XAPI call that changes it, model state afterwards)
TOGGLE = {"running": ("hard_shutdown", "halted"), "halted": ("start", "running")}


def specs(ctx: Context) -> list[Figure]:
    return [
        Figure(
            "tui.event",
            f"event-to-screen latency (power state via a second XAPI client), {ctx.large.vms:,} VMs",
            "ms",
            Target("<", 200, "< 200 ms"),
        ),
        Figure(
            "tui.live_after_paint",
            f"first paint until another client's change reaches the app, {ctx.large.vms:,} VMs",
            "s",
        ),
    ]


def xapi_call(session, op: str, vm_ref: str) -> float:
    t0 = time.perf_counter()
    if op == "start":
        session.xenapi.VM.start(vm_ref, False, False)
    else:
        getattr(session.xenapi.VM, op)(vm_ref)
    return time.perf_counter() - t0


async def toggle_once(app, session, vm_ref: str, timeout_s: float = EVENT_TIMEOUT_S) -> tuple[float, float]:
    vml = tui_harness.vm_list(app)
    store = next(iter(app.sessions.values())).store
    state = store.vms[vm_ref].power_state.value
    if state not in TOGGLE:
        raise AssertionError(f"VM {vm_ref} is {state}; expected running or halted")
    op, want = TOGGLE[state]
    t0 = time.perf_counter()
    call = asyncio.create_task(asyncio.to_thread(xapi_call, session, op, vm_ref))
    await tui_harness.until(
        lambda: store.vms[vm_ref].power_state.value == want, timeout_s, f"row of {vm_ref} showing {want}"
    )
    await vml.wait_for_refresh()
    latency = time.perf_counter() - t0
    call_s = await call
    return latency, call_s


async def run(ctx: Context, url: str) -> tuple[list[float], list[float], float]:
    async with tui_harness.launched(simproc.pool_config(url), ctx.large.vms) as (app, _pilot, _took):
        vml = tui_harness.vm_list(app)
        vm_ref = vml.refs[0]
        session = await asyncio.to_thread(simproc.login, url)
        try:
            # Right after the first paint the backend's watcher may still be doing its own
            # full read: how long changes wait for it is a figure of its own.
            # launched() returns once every VM's devices are in (the staged load's second part):
            # the time since the paint counts too
            first = app.complete_s - app.painted_s + await tui_harness.watcher_live(app, url, WARMUP_TIMEOUT_S)
            await tui_harness.until_idle()
            lat, calls = [], []
            for _ in range(max(2, ctx.runs)):
                latency, call_s = await toggle_once(app, session, vm_ref)
                if vml.refs[0] != vm_ref:
                    raise AssertionError("the VM left the first row; its row is not on screen")
                lat.append(latency)
                calls.append(call_s)
                await asyncio.sleep(SETTLE_S)
        finally:
            await asyncio.to_thread(simproc.logout, session)
        return lat, calls, first


def measure(ctx: Context, out: Results) -> None:
    require("poolctl.tui.app", "the TUI", "create_app")
    with simproc.external(ctx.large) as sim:
        lat, calls, first = asyncio.run(run(ctx, sim.url))
    ms = [x * 1000 for x in lat]
    out.set(
        "tui.event",
        median(ms),
        samples=ms,
        note=f"median of {len(ms)} toggles (start / hard_shutdown) once live; the XAPI call itself "
        f"took {median(calls) * 1000:.0f} ms median, included",
    )
    out.set(
        "tui.live_after_paint",
        first,
        note="a pause made by a second client, from the first paint until the app's store shows it "
        "(the event watcher reads the VMs' devices first, then follows events)",
    )
