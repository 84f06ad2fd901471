"""Pilot tests: the main screen against the simulated lab pool, driven by keys."""

from __future__ import annotations

import pytest

from poolctl.model import ConnectionStatus
from poolctl.tui.app import create_app
from tests.support.tui import loaded, screen_text, wait_for

pytestmark = pytest.mark.timeout(60)

LAB_VMS = {
    "app-01",
    "app-02",
    "build-01",
    "cache-01",
    "db-01",
    "db-02",
    "legacy-01",
    "monitor-01",
    "test-01",
    "web-01",
    "web-02",
    "web-03",
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


async def test_details_show_a_vms_disks_with_their_sr_names(lab):
    app = create_app([lab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await pilot.press("tab")  # tree -> VM list; details follow the list cursor
        vm_list = app.main_screen.vm_list
        while vm_list.cursor_vm.name != "db-01":
            await pilot.press("down")
        await wait_for(pilot, lambda: "db-01 data" in screen_text(app), "details of db-01")
        text = screen_text(app)
        vm = vm_list.cursor_vm
        assert vm.uuid in text
        assert "db-01 data" in text and "xvdb db-01 data 200 GiB on iSCSI storage" in text
        assert "on VM network" in text
        assert "127.0.10.21" in text
        assert "Allowed ops" in text and "clean_shutdown" in text


async def test_details_of_a_host_and_an_sr(lab):
    app = create_app([lab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await pilot.press("down")  # xcp-lab-1
        text = screen_text(app)
        assert "pool master" in text and "Software" in text
        assert "16 ×" in text  # CPU count
        # Storage -> expand -> first SR by name: "iSCSI storage"
        await pilot.press("down", "down", "down", "space", "down")
        sel = app.main_screen.pool_tree.cursor_node.data
        assert sel.kind == "sr"
        text = screen_text(app)
        assert "lvmoiscsi" in text and "Seen by" in text and "xcp-lab-1, xcp-lab-2, xcp-lab-3" in text
        store = app.sessions["lab"].store
        on_sr = {store.vms[r].name for r in app.main_screen.vm_list.refs}
        assert on_sr == {v.name for v in store.vms.values() if any(d.sr == sel.ref for d in v.disks)}
        assert "cache-01" not in on_sr and "web-01" in on_sr


async def test_a_bad_password_shows_a_failed_state_naming_the_pool_and_the_error(lab):
    app = create_app([lab.pool(), lab.pool(name="bad", password="wrong")])
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.sessions["bad"].state.status == ConnectionStatus.FAILED, "pool bad to fail")
        await loaded(pilot)  # the good pool is unaffected
        await pilot.pause()
        text = screen_text(app)
        assert "bad failed:" in text
        note = next(n for n in app._notifications if n.title == "Pool bad: connection failed")
        assert "refused the credentials" in note.message and "bad" in note.message
        assert "Traceback" not in text and "wrong" not in text  # nor the password
        # the pool's details carry the whole message
        await pilot.press("down", "down", "down", "down", "down", "down")
        assert app.main_screen.pool_tree.cursor_node.data.pool == "bad"
        await pilot.pause()
        text = screen_text(app)
        details = text.split("Details", 1)[1]
        assert "Connection failed: pool 'bad'" in details and "refused the credentials" in details
        assert "bad: failed" in text  # the VM list says why it is empty


async def test_an_unreachable_pool_shows_lost_and_retries(lab):
    # Nothing listens on port 9 (discard) on loopback: connection refused.
    pool = lab.pool(name="gone").model_copy(update={"url": "http://127.0.0.1:9"})
    app = create_app([pool])
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(
            pilot, lambda: app.sessions["gone"].state.status == ConnectionStatus.LOST, "pool gone to be lost"
        )
        await pilot.pause()
        assert "gone lost — retrying in" in screen_text(app)
