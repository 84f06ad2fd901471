"""Pilot tests: filter, power keys (through the hypervisor's events), confirm, help, palette."""

from __future__ import annotations

import asyncio

import pytest
import XenAPI

from poolctl.model import PowerState
from poolctl.tui.app import create_app
from poolctl.tui.screens.confirm import ConfirmScreen
from poolctl.tui.screens.help import HelpScreen
from poolctl.tui.widgets.vm_list import VMList
from tests.support.tui import loaded, screen_text, wait_for

pytestmark = pytest.mark.timeout(60)


def names(app) -> list[str]:
    store = app.sessions["lab"].store
    return [store.vms[r].name for r in app.main_screen.vm_list.refs]


def row(app, name: str) -> str:
    """The VM list's on-screen line for ``name``."""
    lines = [line for line in screen_text(app).splitlines() if f"│{name} " in line]
    assert lines, f"{name} is not on screen"
    return lines[0]


async def select_vm(pilot, name: str) -> None:
    """Filter down to ``name`` and put the cursor on it, the way a user would."""
    await pilot.press("slash", *name, "enter")
    vm_list = pilot.app.main_screen.vm_list
    await wait_for(pilot, lambda: vm_list.cursor_vm is not None and vm_list.cursor_vm.name == name, f"cursor on {name}")
    assert pilot.app.focused is vm_list


def sim_power(lab, name: str) -> str:
    return lab.sim.db.field("VM", lab.sim.vm_ref(name), "power_state")


async def test_slash_filters_as_you_type_and_escape_clears(lab):
    app = create_app([lab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await pilot.press("slash", "w", "e")
        assert names(app) == ["web-01", "web-02", "web-03"]
        await pilot.press("b", "-", "0", "2")
        assert names(app) == ["web-02"]
        assert "matching “web-02”" in screen_text(app)
        # by IP, by host name, by power state
        for needle, expected in (
            ("127.0.10.2", ["db-01", "db-02"]),
            ("xcp-lab-3", ["build-01", "db-02"]),
            ("halted", ["legacy-01", "test-01"]),
        ):
            app.main_screen.filter_input.value = ""
            await pilot.press(*needle)
            assert names(app) == expected, needle
        await pilot.press("escape")
        assert len(names(app)) == 12
        assert not app.main_screen.filter_input.display
        assert app.focused is app.main_screen.vm_list


async def test_start_shows_running_through_the_hypervisor_event(lab):
    app = create_app([lab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await select_vm(pilot, "test-01")
        assert "halted" in row(app, "test-01")
        await pilot.press("s")
        await wait_for(pilot, lambda: "running" in row(app, "test-01"), "test-01 to show running")
        assert sim_power(lab, "test-01") == "Running"
        vm = app.main_screen.vm_list.cursor_vm
        assert vm.power_state == PowerState.RUNNING and vm.host is not None
        assert app.sessions["lab"].store.name_of(vm.host) in row(app, "test-01")


async def test_force_off_asks_first_and_cancel_leaves_the_vm_running(lab):
    app = create_app([lab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await select_vm(pilot, "web-01")
        await pilot.press("K")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirm dialog")
        text = screen_text(app)
        assert "Force off web-01 (running on xcp-lab-1, pool lab)?" in text
        await pilot.press("n")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen), "the dialog to close")
        await pilot.pause(0.3)
        assert sim_power(lab, "web-01") == "Running"
        assert "running" in row(app, "web-01")

        await pilot.press("K")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirm dialog")
        await pilot.press("y")
        await wait_for(pilot, lambda: "halted" in row(app, "web-01"), "web-01 to show halted")
        assert sim_power(lab, "web-01") == "Halted"


async def test_suspend_key_toggles_suspend_and_resume(lab):
    app = create_app([lab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await select_vm(pilot, "web-02")
        await pilot.press("z")
        await wait_for(pilot, lambda: "suspended" in row(app, "web-02"), "web-02 to show suspended")
        await pilot.press("z")
        await wait_for(pilot, lambda: "running" in row(app, "web-02"), "web-02 to show running again")
        assert sim_power(lab, "web-02") == "Running"


async def test_a_refused_operation_names_the_vm_and_quotes_the_hypervisor(lab):
    app = create_app([lab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await select_vm(pilot, "web-03")  # running: starting it again is refused
        await pilot.press("s")
        await wait_for(
            pilot, lambda: any("Start web-03 failed" in n.title for n in app._notifications), "the failure notification"
        )
        note = next(n for n in app._notifications if "Start web-03 failed" in n.title)
        assert "web-03" in note.message and "Traceback" not in note.message
        assert sim_power(lab, "web-03") == "Running"


async def test_vm_powered_off_by_another_client_changes_on_screen(lab):
    app = create_app([lab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        assert "running" in row(app, "app-01")

        def other_client() -> None:
            session = XenAPI.Session(lab.url)
            session.xenapi.login_with_password("root", "demo", "1.0", "poolctl-tests")
            try:
                vm = session.xenapi.VM.get_by_name_label("app-01")[0]
                session.xenapi.VM.hard_shutdown(vm)
            finally:
                session.xenapi.session.logout()

        await asyncio.to_thread(other_client)
        # The benchmark `tui.event` measures this latency; here it only has to arrive.
        await wait_for(pilot, lambda: "halted" in row(app, "app-01"), "app-01 to show halted", timeout=5)
        assert "xcp-lab-2 up 3 VMs" in screen_text(app)  # the host's VM count followed


async def test_help_lists_every_binding_with_its_id(lab):
    app = create_app([lab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "the help screen")
        text = screen_text(app)
        # more bindings than 40 rows: what a user reads scrolling the help to its end
        app.screen.query_one("#help-box").scroll_end(animate=False, immediate=True)
        await pilot.pause(0.1)
        text += screen_text(app)
        for binding_id in app.binding_ids():
            assert binding_id in text, binding_id
        assert "vm.force_off" in text and "Force off" in text
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, HelpScreen), "help to close")


async def test_keymap_from_the_config_rebinds_by_id(lab):
    app = create_app([lab.pool()], keymap={"vm.start": "f5", "app.help": "f1"})
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await select_vm(pilot, "test-01")
        await pilot.press("s")  # no longer bound
        await pilot.press("f5")
        await wait_for(pilot, lambda: "running" in row(app, "test-01"), "test-01 to start via f5")
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "help via f1")
        start_line = next(line for line in screen_text(app).splitlines() if "vm.start" in line)
        assert "f5" in start_line.lower()


async def test_command_palette_offers_power_actions_for_the_selected_vm(lab):
    app = create_app([lab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await select_vm(pilot, "test-01")
        await pilot.press("ctrl+p")
        await pilot.press(*"start vm test")
        await wait_for(pilot, lambda: "Start VM test-01" in screen_text(app), "the palette hit")
        await pilot.press("enter")
        await wait_for(pilot, lambda: sim_power(lab, "test-01") == "Running", "test-01 to start")


async def test_command_palette_offers_what_the_selected_vms_state_allows_and_migrate(lab, tmp_path, monkeypatch):
    from poolctl.tui.screens.history import HistoryScreen
    from poolctl.tui.screens.migrate import MigrateDialog

    monkeypatch.setenv("POOLCTL_STATE_DIR", str(tmp_path))
    app = create_app([lab.pool()], keymap={"vm.migrate": "f9"})
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await select_vm(pilot, "web-01")
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: "Migrate VM web-01" in screen_text(app), "the palette's commands")
        text = screen_text(app)
        for offered in ("Shut down VM web-01", "Reboot VM web-01", "Force off VM web-01", "Migration history"):
            assert offered in text
        assert "Start VM web-01" not in text and "Resume VM web-01" not in text  # it is running
        theme = text.find("Change the current theme")  # Textual's own commands come after the VM's
        assert theme == -1 or text.index("Shut down VM web-01") < theme
        assert "pinging it — key f9" in text  # the key as remapped
        await pilot.press(*"migrate vm")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MigrateDialog), "the migrate dialog")
        assert app.screen.vm.name == "web-01"
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is app.main_screen, "the dialog to close")
        await pilot.press("ctrl+p", *"history")
        await wait_for(pilot, lambda: "Migration history" in screen_text(app), "the history command")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen), "the history screen")


async def test_mouse_click_selects_a_row_and_keys_navigate(lab):
    app = create_app([lab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        vm_list = app.main_screen.vm_list
        # y=0 is the border, y=1 the header: y=4 is the third VM (build-01)
        await pilot.click(VMList, offset=(2, 4))
        await wait_for(
            pilot,
            lambda: vm_list.cursor_vm is not None and vm_list.cursor_vm.name == "build-01",
            "the click to select build-01",
        )
        assert app.focused is vm_list
        await pilot.press("end")
        assert vm_list.cursor_vm.name == "web-03"
        await pilot.press("home", "down")
        assert vm_list.cursor_vm.name == "app-02"
        await pilot.press("pagedown")
        assert vm_list.cursor_vm.name == "web-03"  # 12 rows fit: a page goes to the end
        await pilot.press("up")
        assert vm_list.cursor_vm.name == "web-02"
