"""The screens we snapshot (tests) and publish as SVGs (scripts/screenshots.py).

A scene builds the app for the lab simulator at ``url`` and drives it to one screen with
a user's keys; blinking cursors and animations are off so pictures are stable.

The completed-migration scene runs a real migration; once it has ended, its measured
figures (duration, ping samples and counts) are pinned to fixed values and the panel
redrawn from them, so the picture is stable while the drawing code is the real one.
Each scene's migration log lives at a fixed path (it is shown on the history screen).
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from poolctl.audit import AuditLog
from poolctl.config import PoolConfig, pool_config
from poolctl.model import ConnectionStatus
from poolctl.ping.stats import Sample
from poolctl.tui.app import PoolctlApp, create_app
from poolctl.tui.screens.batch_dialog import BatchDialog
from poolctl.tui.screens.history import HistoryScreen
from poolctl.tui.screens.migrate import MigrateDialog
from tests.support.tui import loaded, wait_for

STATE_ROOT = Path(tempfile.gettempdir()) / "poolctl-scenes"


def lab_pool(url: str, *, name: str = "lab", password: str = "demo") -> PoolConfig:
    return pool_config({"name": name, "backend": "xen", "url": url, "username": "root", "password": password})


async def _dialog(pilot, vm: str = "web-01") -> None:
    app = pilot.app
    await pilot.press("slash", *vm, "enter")
    await wait_for(
        pilot,
        lambda: app.main_screen.vm_list.cursor_vm is not None and app.main_screen.vm_list.cursor_vm.name == vm,
        f"cursor on {vm}",
    )
    await pilot.press("m")
    await wait_for(pilot, lambda: isinstance(app.screen, MigrateDialog), "the dialog")
    dialog = app.screen
    await wait_for(pilot, lambda: len(dialog.checks) == len(dialog.hosts), "every pre-check")
    usable = sum(1 for c in dialog.checks.values() if c.ok)
    await wait_for(pilot, lambda: len(dialog.predictions) == usable, "the prediction for each usable host")
    await pilot.pause(0.2)


async def _storage_dialog(pilot) -> None:
    await _dialog(pilot, "cache-01")


def _pin(controller) -> None:
    """Fixed figures in place of the measured ones (see the module docstring)."""
    samples = [Sample(i, float(i) * 0.1, None if i in (21, 22) else 0.2 + (i % 5) * 0.15) for i in range(90)]
    rec = controller.pinger._rec
    with rec._lock:
        rec._ring = deque(samples, maxlen=rec._ring.maxlen)
    controller.record = controller.record.model_copy(
        update={"duration_s": 8.1, "ping_sent": 90, "ping_lost": 2, "ping_longest_gap_s": 0.3}
    )
    controller._t0, controller._t_end = 0.0, 8.1


async def _completed(pilot) -> None:
    await _dialog(pilot)
    await pilot.press("enter")
    app = pilot.app
    await wait_for(pilot, lambda: len(app.migrations.panels()) == 1, "the panel")
    panel = app.migrations.panels()[0]
    await wait_for(pilot, lambda: panel.ended_shown, "the end of the migration", timeout=30)
    _pin(panel.controller)
    panel.ended_shown = False
    panel.tick()
    app.main_screen.vm_list.focus()  # a stable focus (no blinking cursor anywhere)
    await pilot.pause(0.3)


async def _history(pilot) -> None:
    app = pilot.app
    await pilot.press("H")
    await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen), "the history screen")
    await wait_for(pilot, lambda: len(app.screen.rows) == len(HISTORY), "the logged moves")
    await pilot.pause(0.2)


def _record(n: int, day: int, vm: str, src: str, dst: str, result: str, took: float, **kw) -> dict:
    return {
        "id": f"scene-{n}",
        "time": f"2025-06-{day:02d}T09:{n:02d}:00+00:00",
        "pool": "lab",
        "vm": vm,
        "source": src,
        "destination": dst,
        "result": result,
        "duration_s": took,
        "ping_address": "127.0.10.11",
        "ping_method": "icmp (privileged, root)",
        **kw,
    }


HISTORY = [  # oldest first, as the log is written
    _record(
        1,
        2,
        "db-02",
        "xcp-lab-3",
        "xcp-lab-1",
        "success",
        31.4,
        ping_sent=310,
        ping_lost=3,
        ping_longest_gap_s=0.42,
        downtime_ms=180,
    ),
    _record(
        2,
        3,
        "cache-01",
        "xcp-lab-1",
        "xcp-lab-2",
        "failed",
        0.4,
        error="VM_REQUIRES_SR: [OpaqueRef:4b1c…, Local storage xcp-lab-1] the VM has a disk on a local SR",
    ),
    _record(3, 4, "web-01", "xcp-lab-1", "xcp-lab-2", "cancelled", 4.2, ping_sent=42, error="cancelled"),
    _record(4, 5, "app-01", "xcp-lab-2", "xcp-lab-1", "success", 8.1, ping_sent=81, ping_longest_gap_s=0.2),
    _record(
        5,
        6,
        "web-02",
        "xcp-lab-1",
        "xcp-lab-3",
        "unfinished",
        2.0,
        ping_sent=20,
        error="poolctl quit while the migration was running; the hypervisor carried on with it",
    ),
]


async def _host_dialog(pilot, host: str) -> None:
    """`e` on ``host`` in the tree, once its plan is shown."""
    app = pilot.app
    tree = app.main_screen.pool_tree
    tree.focus()
    for _ in range(8):
        picked = app.main_screen.selected_host()
        if picked is not None and picked[1].name == host:
            break
        await pilot.press("down")
    await pilot.press("e")
    await wait_for(pilot, lambda: isinstance(app.screen, BatchDialog), "the evacuation dialog")
    dialog = app.screen
    await wait_for(pilot, lambda: dialog.plan is not None, "the plan", timeout=20)
    await pilot.pause(0.2)


async def _evacuate_dialog(pilot) -> None:
    await _host_dialog(pilot, "xcp-lab-3")


async def _evacuate_blocked(pilot) -> None:
    await _host_dialog(pilot, "xcp-lab-1")


def _pin_batch(panel) -> None:
    """Fixed figures in place of the measured ones, as ``_pin`` does for one migration."""
    for n, ref in enumerate(panel.order):
        row = panel.rows[ref]
        # the second VM lost one probe (n of them, as its line says)
        row.samples = [Sample(i, i * 0.1, None if n and i == 75 else 0.2 + ((i + n) % 7) * 0.1) for i in range(80)]
        row.line = dataclasses.replace(row.line, seconds=8.1 + n, sent=81 + 10 * n, lost=n, longest_gap_s=0.1 + 0.2 * n)
    summary = panel.summary
    lines = tuple(panel.rows[ref].line for ref in panel.order)
    panel.summary = dataclasses.replace(summary, lines=lines, seconds=17.6)
    panel.redraw()


async def _evacuated(pilot) -> None:
    app = pilot.app
    await _evacuate_dialog(pilot)
    await pilot.press("enter")  # Start has the focus
    await wait_for(pilot, lambda: len(app.migrations.batches.panels()) == 1, "the batch panel")
    panel = app.migrations.batches.panels()[0]
    await wait_for(pilot, lambda: panel.ended, "the end of the evacuation", timeout=60)
    _pin_batch(panel)
    app.main_screen.vm_list.focus()  # a stable focus (no blinking cursor anywhere)
    await pilot.pause(0.3)


@dataclass(frozen=True)
class Scene:
    name: str
    description: str
    press: tuple[str, ...] = ()
    bad_pool: bool = False  # add a pool whose password the simulator refuses
    drive: Callable[..., Awaitable[None]] | None = None  # instead of ``press``
    log: tuple[dict, ...] = ()  # the migration log's lines at the start

    def app(self, url: str) -> PoolctlApp:
        pools = [lab_pool(url)]
        if self.bad_pool:
            pools.append(lab_pool(url, name="bad", password="wrong"))
        app = create_app(pools)
        app.animation_level = "none"
        path = STATE_ROOT / self.name / "migrations.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(line) + "\n" for line in self.log))
        app.migrations.audit = AuditLog(path)
        return app

    async def prepare(self, pilot) -> None:
        app = pilot.app
        await loaded(pilot)
        if self.bad_pool:
            await wait_for(
                pilot, lambda: app.sessions["bad"].state.status == ConnectionStatus.FAILED, "pool bad to fail"
            )
        app.main_screen.filter_input.cursor_blink = False
        if self.drive is not None:
            await self.drive(pilot)
        else:
            await pilot.press(*self.press)
        await pilot.pause(0.1)


SCENES = {
    s.name: s
    for s in (
        Scene("main", "the lab pool loaded: tree, every VM, pool details"),
        Scene("filter", "`/db` typed: the list narrows as you type", press=("slash", "d", "b")),
        Scene("help", "`?`: every binding with its id", press=("question_mark",)),
        Scene(
            "vm-details", "a VM's disks, SRs, networks and operations", press=("tab", "down", "down", "down", "down")
        ),
        Scene(
            "connection-error",
            "a pool with a wrong password: failed, in words",
            press=("down", "down", "down", "down", "down", "down"),
            bad_pool=True,
        ),
        Scene(
            "migrate-dialog",
            "`m` on web-01: every other host with the pre-check's verdict, ping settings",
            drive=_dialog,
        ),
        Scene(
            "migrate-storage",
            "`m` on cache-01, its disk on a local SR: the disk goes to the shared SR, the copy's size and estimate",
            drive=_storage_dialog,
        ),
        Scene(
            "migration-complete",
            "a finished live migration: progress, ping sparkline, lost pings, longest gap",
            drive=_completed,
        ),
        Scene(
            "evacuate-dialog",
            "`e` on xcp-lab-3: the plan, VM → destination, and how many at once",
            drive=_evacuate_dialog,
        ),
        Scene(
            "evacuate-blocked",
            "`e` on xcp-lab-1: a VM with a local disk cannot leave; named, with why, and no Start",
            drive=_evacuate_blocked,
        ),
        Scene(
            "evacuate",
            "an evacuation done: a row per VM with its state, sparkline, lost and gap; the host in maintenance",
            drive=_evacuated,
        ),
        Scene(
            "history",
            "`H`: past migrations from the log, the highlighted one spelled out",
            drive=_history,
            log=tuple(HISTORY),
        ),
    )
}
