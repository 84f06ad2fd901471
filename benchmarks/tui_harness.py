"""Drive the TUI headless through Textual's test harness, and the readiness conditions the
TUI benchmarks share.

"Fully painted" means: the main screen's VM list (``VMList``) lists every VM of the
inventory (``row_count`` equals the VM count, scope = the whole pool, as the main screen
starts) and a screen refresh has completed after that (``wait_for_refresh``). "Complete"
means the store also holds every VM's disks and nics (read after the paint when staged).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

from benchmarks.common import require

SIZE = (120, 40)
POLL_S = 0.001  # how often a condition is checked: bounds the error of every latency
PAINT_TIMEOUT_S = 120.0


def vm_list(app):
    VMList = require("poolctl.tui.widgets.vm_list", "the TUI's VM list", "VMList")
    return app.query_one(VMList)


async def until(cond: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.perf_counter() + timeout_s
    while not cond():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{what}: not reached within {timeout_s:.0f} s")
        await asyncio.sleep(POLL_S)


def _safe(probe: Callable[[], bool]) -> Callable[[], bool]:
    """A condition that is False (not an error) while the screen is still being built."""

    def check() -> bool:
        try:
            return probe()
        except Exception as exc:  # NoMatches before the main screen is mounted
            if type(exc).__name__ in ("NoMatches", "ScreenStackError"):
                return False
            raise

    return check


async def watcher_live(app, url: str, timeout_s: float = 180.0) -> float:
    """Block until changes made by another XAPI client reach the app's store; seconds waited.

    Right after the first paint the backend's watcher may still be doing its own full read:
    latencies are measured once it is live. The probe pauses and unpauses the last running
    VM in the list through a second session and waits for the store to show both.
    """
    from benchmarks import simproc

    store = next(iter(app.sessions.values())).store
    ref = next(r for r in reversed(vm_list(app).refs) if store.vms[r].power_state.value == "running")
    session = await asyncio.to_thread(simproc.login, url)
    t0 = time.perf_counter()
    try:
        for call, want in (("pause", "paused"), ("unpause", "running")):
            await asyncio.to_thread(getattr(session.xenapi.VM, call), ref)
            await until(
                lambda want=want: store.vms[ref].power_state.value == want,
                timeout_s,
                f"the store showing {ref} {want} (watcher live)",
            )
            if want == "paused":
                live = time.perf_counter() - t0
    finally:
        await asyncio.to_thread(simproc.logout, session)
    return live


async def until_idle(window_s: float = 0.5, max_share: float = 0.1, timeout_s: float = 180.0) -> float:
    """Wait until this process (all its threads) uses under ``max_share`` of a core over
    ``window_s``; returns the seconds waited. After the first paint the backend may still be
    working (its watcher's own full read): latencies are measured in the steady state."""
    t0 = time.perf_counter()
    while True:
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.sleep(window_s)
        if (time.process_time() - cpu) / (time.perf_counter() - wall) < max_share:
            return time.perf_counter() - t0
        if time.perf_counter() - t0 > timeout_s:
            raise TimeoutError(f"the app stayed busy for {timeout_s:.0f} s after the first paint")


@contextlib.asynccontextmanager
async def launched(pool_config, expected_vms: int, t0: float | None = None) -> AsyncIterator[tuple]:
    """(app, pilot, seconds from ``t0`` to fully painted); ``t0`` defaults to now."""
    t0 = time.perf_counter() if t0 is None else t0
    # as the CLI does: the pool starts loading before the TUI is imported
    first_loads = require("poolctl.loading", "the pool preloader", "start")([pool_config])
    create_app = require("poolctl.tui.app", "the TUI", "create_app")
    app = create_app([pool_config], first_loads=first_loads)
    async with app.run_test(size=SIZE) as pilot:
        await until(
            _safe(lambda: vm_list(app).row_count >= expected_vms),
            PAINT_TIMEOUT_S,
            f"VM list showing {expected_vms:,} rows",
        )
        await vm_list(app).wait_for_refresh()
        took = time.perf_counter() - t0
        rows = vm_list(app).row_count
        if rows != expected_vms:
            raise AssertionError(f"VM list shows {rows:,} rows, the inventory has {expected_vms:,} VMs")
        app.painted_s = took
        # A staged load (Backend.first_inventory) paints before the VMs' disks and nics are in;
        # everything measured after the paint starts from the complete store.
        stores = [s.store for s in app.sessions.values()]
        await until(
            lambda: not any(st.devices_pending for st in stores), PAINT_TIMEOUT_S, "every VM's devices in the store"
        )
        app.complete_s = time.perf_counter() - t0
        yield app, pilot, took
