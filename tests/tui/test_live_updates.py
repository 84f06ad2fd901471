"""The VM list follows the hypervisor: rows move in place, the cursor stays on its VM."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import XenAPI
from textual import events

from poolctl.model import ConnectionStatus
from poolctl.tui.app import PoolctlApp, create_app
from poolctl.tui.screens.confirm import ConfirmScreen
from poolctl.tui.screens.help import HelpScreen
from poolctl.tui.screens.main import MainScreen
from poolctl.tui.widgets.vm_list import VMList
from tests.support.tui import loaded, screen_text, wait_for

pytestmark = pytest.mark.timeout(60)


def names(app) -> list[str]:
    store = app.sessions["lab"].store
    return [store.vms[r].name for r in app.main_screen.vm_list.refs]


def xapi(url: str, work: Callable) -> None:
    """Run ``work(xenapi)`` as another XenAPI client would (its own session)."""
    session = XenAPI.Session(url)
    session.xenapi.login_with_password("root", "demo", "1.0", "poolctl-tests")
    try:
        work(session.xenapi)
    finally:
        session.xenapi.session.logout()


async def test_a_renamed_vm_moves_to_its_place_and_keeps_the_cursor(lab):
    app = create_app([lab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        vm_list = app.main_screen.vm_list
        ref = lab.sim.vm_ref("web-02")
        await pilot.press("tab")
        assert vm_list.move_to(ref)
        before = vm_list.cursor_index

        def rename(x) -> None:
            x.VM.set_name_label(x.VM.get_by_name_label("web-02")[0], "aa-web-02")

        await asyncio.to_thread(xapi, lab.url, rename)
        await wait_for(pilot, lambda: names(app)[0] == "aa-web-02", "the renamed VM to move to the top")
        assert vm_list.cursor_ref == ref and vm_list.cursor_index == 0 != before
        assert names(app) == sorted(names(app), key=str.casefold)
        details = lambda: screen_text(app).split("Details", 1)[1]  # noqa: E731
        await wait_for(pilot, lambda: "VM          aa-web-02" in details(), "the details to follow the rename")


async def test_a_burst_of_changes_leaves_every_row_right(lab):
    app = create_app([lab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await pilot.press("down")  # xcp-lab-1: 4 VMs
        assert names(app) == ["cache-01", "db-01", "web-01", "web-02"]

        def everything_off(x) -> None:
            for vm, rec in x.VM.get_all_records().items():
                if not rec["is_a_template"] and not rec["is_control_domain"] and rec["power_state"] == "Running":
                    x.Async.VM.hard_shutdown(vm)

        await asyncio.to_thread(xapi, lab.url, everything_off)
        store = app.sessions["lab"].store
        await wait_for(
            pilot,
            lambda: all(vm.power_state.value == "halted" for vm in store.vms.values()),
            "every VM to be halted in the store",
        )
        await pilot.pause(0.1)
        assert names(app) == []  # nothing is resident on xcp-lab-1 any more
        assert (
            "xcp-lab-1 up 0 VMs"
            in app.main_screen.pool_tree.node_for("lab", "host", lab.sim.host_ref("xcp-lab-1")).label.plain
        )
        await pilot.press("up")  # the pool: every VM, each shown halted
        assert len(names(app)) == 12


async def test_keys_typed_ahead_of_the_filter_land_where_they_belong(lab):
    # Over a laggy SSH link keys arrive in one packet: `/db<Enter>K` is a filter, then a
    # force off of the VM under the cursor; nothing may end up in the wrong widget.
    app = create_app([lab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        for key, char in [("slash", "/"), ("d", "d"), ("b", "b"), ("enter", "\r"), ("K", "K")]:
            app.post_message(events.Key(key, char))
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the force-off dialog")
        assert app.main_screen.filter_input.value == "db"
        assert names(app) == ["db-01", "db-02"]
        assert "Force off db-01" in screen_text(app)
        for key, char in [("n", "n"), ("escape", None), ("w", "w")]:
            app.post_message(events.Key(key, char))
        await wait_for(pilot, lambda: app.main_screen.vm_list.filter_text == "", "Esc to clear the filter")
        assert app.main_screen.filter_input.value == ""  # the `w` did not land in it
        assert lab.sim.db.field("VM", lab.sim.vm_ref("db-01"), "power_state") == "Running"


async def test_on_exit_runs_after_the_backends_are_closed(lab):
    calls: list[bool] = []
    app = create_app([lab.pool()], on_exit=lambda: calls.append(app.sessions["lab"].stopping.is_set()))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await pilot.press("q")
    assert calls == [True]
    assert app.sessions["lab"].backend is not None


def test_every_binding_has_an_id_and_ids_are_unique():
    owners = [PoolctlApp, MainScreen, VMList, ConfirmScreen, HelpScreen]
    bindings = [b for owner in owners for b in owner.BINDINGS]
    assert all(getattr(b, "id", None) for b in bindings), [b for b in bindings if not getattr(b, "id", None)]
    ids = PoolctlApp.binding_ids()
    assert len(ids) == len(set(ids))
    for expected in (
        "vm.start",
        "vm.shutdown",
        "vm.reboot",
        "vm.suspend",
        "vm.force_off",
        "list.filter",
        "app.help",
        "app.quit",
    ):
        assert expected in ids


async def test_a_lost_connection_shows_lost_then_recovers_with_what_changed_meanwhile(lab):
    app = create_app([lab.pool()])
    port = int(lab.url.rsplit(":", 1)[1])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        session = app.sessions["lab"]
        lab.sim.close()
        await wait_for(pilot, lambda: session.state.status == ConnectionStatus.LOST, "the pool to be lost")
        await pilot.pause()
        assert "lab lost — retrying" in screen_text(app)
        note = next(n for n in app._notifications if "connection lost" in n.title)
        assert "lab" in note.title and "Traceback" not in note.message
        lab.sim.set_power_state("web-01", "Halted")  # changed while we could not see it
        lab.sim.serve(host="127.0.0.1", port=port)
        await wait_for(pilot, lambda: session.state.status == ConnectionStatus.CONNECTED, "the pool to reconnect")
        await wait_for(
            pilot,
            lambda: "halted" in next(line for line in screen_text(app).splitlines() if "│web-01 " in line),
            "web-01 to show halted",
        )
        assert "lab connected" in screen_text(app)
