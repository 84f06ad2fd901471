"""Pilot tests: the main screen against the simulated lab pool, driven by keys."""

from __future__ import annotations

import pytest

from poolctl.model import PowerState
from poolctl.tui.app import create_app
from tests.tui.conftest import loaded, screen_text, wait_for

pytestmark = pytest.mark.timeout(60)

LAB_VMS = {
    "app-01", "app-02", "build-01", "cache-01", "db-01", "db-02", "legacy-01",
    "monitor-01", "test-01", "web-01", "web-02", "web-03",
}


def names(app) -> list[str]:
    store = app.sessions["lab"].store
    return [store.vms[r].name for r in app.main_screen.vm_list.refs]


async def test_pool_loads_with_hosts_and_every_vm_sorted(lab):
    app = create_app([lab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        assert names(app) == sorted(LAB_VMS)
        text = screen_text(app)
        assert "lab connected" in text
        for host in ("xcp-lab-1", "xcp-lab-2", "xcp-lab-3"):
            assert host in text
        assert "Storage" in text and "Networks" in text
        # state in words, not colour alone
        assert "halted" in text and "running" in text


async def test_selecting_a_host_lists_only_its_vms(lab):
    app = create_app([lab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        tree = app.main_screen.pool_tree
        store = app.sessions["lab"].store
        host = lab.sim.host_ref("xcp-lab-2")
        await pilot.press("down", "down")  # pool -> xcp-lab-1 -> xcp-lab-2
        assert tree.cursor_node.data.ref == host
        await pilot.pause()
        assert names(app) == ["app-01", "app-02", "monitor-01", "web-03"]
        assert all(store.vms[r].host == host for r in app.main_screen.vm_list.refs)
        assert "VMs on host xcp-lab-2 (4)" in screen_text(app)
