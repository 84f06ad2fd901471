"""The loaded inventory leaves the collector's generations (no full-collection pauses at 10k VMs)."""

from __future__ import annotations

import gc

import pytest

from poolctl.tui import app as app_module
from poolctl.tui.app import create_app
from tests.support.tui import loaded

pytestmark = pytest.mark.timeout(60)


async def test_each_load_freezes_the_store_once_and_quitting_unfreezes(lab, monkeypatch):
    calls = []
    real_freeze = gc.freeze
    monkeypatch.setattr(app_module.gc, "freeze", lambda: (calls.append(1), real_freeze()))
    app = create_app([lab.pool(), lab.pool(name="lab-b")])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot, "lab")
        await loaded(pilot, "lab-b")
        # three times per pool's load, never per update: the records as the first part of the
        # load ends (loading.load_pool), the store once the UI thread has built it, and the VMs
        # again once their devices (the staged rest) are in the store (gcpause.freeze_long_lived)
        assert len(calls) == 6
        assert gc.get_freeze_count() > 0
        vm = next(iter(app.sessions["lab"].store.vms.values()))
        # frozen objects are still tracked, only no longer in the generations gc scans
        assert gc.is_tracked(vm) and not any(o is vm for o in gc.get_objects())
        await pilot.press("down", "down")
        await pilot.pause()
        assert len(calls) == 6
    assert gc.get_freeze_count() == 0
