"""Snapshots (120x40) of the migrate dialog and of a completed migration panel.

The dialog is deterministic as it is (the lab's seeded pool). The panel comes from a real
migration; once it has ended, its measured figures (duration, ping samples and counts) are
pinned to fixed values and the panel redrawn from them, so the picture is stable while the
drawing code is the real one. Regenerate with --snapshot-update.
"""

from __future__ import annotations

from collections import deque

import pytest

from poolctl.ping import Sample
from poolctl.tui.app import create_app
from poolctl.tui.screens.migrate import MigrateDialog
from tests.tui.conftest import loaded, wait_for

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("POOLCTL_STATE_DIR", str(tmp_path))


async def _dialog(pilot) -> None:
    app = pilot.app
    await loaded(pilot)
    await pilot.press("slash", *"web-01", "enter")
    await wait_for(pilot, lambda: app.main_screen.vm_list.cursor_vm is not None
                   and app.main_screen.vm_list.cursor_vm.name == "web-01", "cursor on web-01")
    await pilot.press("m")
    await wait_for(pilot, lambda: isinstance(app.screen, MigrateDialog), "the dialog")
    dialog = app.screen
    await wait_for(pilot, lambda: len(dialog.checks) == len(dialog.hosts), "every pre-check")
    await pilot.pause(0.2)


def _pin(controller) -> None:
    """Fixed figures in place of the measured ones (see the module docstring)."""
    samples = [Sample(i, float(i) * 0.1, None if i in (21, 22) else 0.2 + (i % 5) * 0.15) for i in range(90)]
    rec = controller.pinger._rec
    with rec._lock:
        rec._ring = deque(samples, maxlen=rec._ring.maxlen)
    controller.record = controller.record.model_copy(update={
        "duration_s": 8.1, "ping_sent": 90, "ping_lost": 2, "ping_longest_gap_s": 0.3})
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


def test_migrate_dialog(snap_compare, snapshot_lab):
    app = create_app([snapshot_lab.pool()])
    app.animation_level = "none"
    assert snap_compare(app, run_before=_dialog, terminal_size=(120, 40))


def test_completed_migration_panel(snap_compare, snapshot_lab):
    app = create_app([snapshot_lab.pool()])
    app.animation_level = "none"
    assert snap_compare(app, run_before=_completed, terminal_size=(120, 40))
