"""Filter-as-you-type latency per keystroke at the large size.

Per key: from `pilot.press(key)` until the VM list holds the filter typed so far and a
screen refresh has completed after it. The press runs as its own task so the harness's
own idle-waiting after delivering the key is not counted.
"""

from __future__ import annotations

import asyncio
import time

from benchmarks import simproc, tui_harness
from benchmarks.common import Context, Figure, Results, Target, median, percentile, require

KEY_TIMEOUT_S = 30


def specs(ctx: Context) -> list[Figure]:
    w = f"{ctx.large.vms:,} VMs"
    return [
        Figure("tui.filter.median", f"filter-as-you-type latency per key, median, {w}", "ms"),
        Figure("tui.filter.p95", f"filter-as-you-type latency per key, p95, {w}", "ms", Target("<", 50, "< 50 ms")),
    ]


def probe_text(app) -> str:
    """What to type: a real VM's name, so every prefix narrows the list and the last matches."""
    refs = tui_harness.vm_list(app).refs
    store = next(iter(app.sessions.values())).store
    return store.vms[refs[len(refs) // 2]].name


async def type_and_time(app, pilot, text: str) -> list[float]:
    vml = tui_harness.vm_list(app)
    await pilot.press("slash")
    await tui_harness.until(
        lambda: app.focused is not None and app.focused.id == "filter", KEY_TIMEOUT_S, "filter input focused after /"
    )
    latencies = []
    typed = ""
    for ch in text:
        typed += ch
        want = typed.strip().casefold()
        t0 = time.perf_counter()
        press = asyncio.create_task(pilot.press(ch))
        await tui_harness.until(lambda want=want: vml.filter_text == want, KEY_TIMEOUT_S, f"filter {want!r} applied")
        await vml.wait_for_refresh()
        latencies.append(time.perf_counter() - t0)
        await press
    if vml.row_count < 1:
        raise AssertionError(f"filter {text!r} left no rows; the VM it names should match")
    await pilot.press("escape")
    await tui_harness.until(lambda: vml.filter_text == "", KEY_TIMEOUT_S, "filter cleared")
    return latencies


async def run(ctx: Context, url: str) -> tuple[list[float], str, float]:
    cfg = simproc.pool_config(url)
    async with tui_harness.launched(cfg, ctx.large.vms) as (app, pilot, _took):
        settle = await tui_harness.watcher_live(app, url) + await tui_harness.until_idle()
        text = probe_text(app)
        latencies: list[float] = []
        for _ in range(ctx.runs):
            latencies += await type_and_time(app, pilot, text)
        return latencies, text, settle


def measure(ctx: Context, out: Results) -> None:
    require("poolctl.tui.app", "the TUI", "create_app")
    with simproc.external(ctx.large) as sim:
        latencies, text, settle = asyncio.run(run(ctx, sim.url))
    ms = [x * 1000 for x in latencies]
    note = (
        f"{len(ms)} keystrokes ({ctx.runs} x typing {text!r}), typed once live updates flowed "
        f"and the app was idle ({settle:.1f} s after the first paint)"
    )
    out.set("tui.filter.median", median(ms), samples=ms, note=note)
    out.set("tui.filter.p95", percentile(ms, 95), note=note)
