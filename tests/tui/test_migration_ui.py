"""Pilot tests of live migration from the keyboard: dialog, panel, sparkline, cancel, history.

The real app, the real Xen backend and the XAPI simulator; pings go to the lab VMs' loopback
addresses and really answer.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest

from poolctl.model import MigrationPhase
from poolctl.tui.app import create_app
from poolctl.tui.screens.confirm import ConfirmScreen
from poolctl.tui.screens.history import HistoryScreen
from poolctl.tui.screens.migrate import MigrateDialog
from poolctl.tui.widgets.migration_panel import MigrationPanel
from poolctl.tui.widgets.sparkline import BARS
from tests.support.tui import Lab, loaded, screen_text, served_lab, wait_for

pytestmark = [pytest.mark.timeout(90), pytest.mark.usefixtures("state_dir")]


def _lab(seconds: float) -> Iterator[Lab]:
    yield from served_lab(migration_seconds=seconds)


@pytest.fixture
def fastlab() -> Iterator[Lab]:
    yield from _lab(2.5)


@pytest.fixture
def slowlab() -> Iterator[Lab]:
    yield from _lab(6.0)


@pytest.fixture
def longlab() -> Iterator[Lab]:
    """Moves that stay cancellable far longer than any test takes to cancel them, however loaded
    the machine: a test waits on what it does, not on a race with the move."""
    yield from _lab(300.0)


async def select_vm(pilot, name: str) -> None:
    await pilot.press("slash", *name, "enter")
    vm_list = pilot.app.main_screen.vm_list
    await wait_for(pilot, lambda: vm_list.cursor_vm is not None and vm_list.cursor_vm.name == name, f"cursor on {name}")


async def open_dialog(pilot, name: str) -> MigrateDialog:
    await select_vm(pilot, name)
    await pilot.press("m")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, MigrateDialog), "the migrate dialog")
    dialog = pilot.app.screen
    await wait_for(pilot, lambda: len(dialog.checks) == len(dialog.destinations), "every pre-check")
    return dialog


async def migrate(pilot, name: str) -> MigrationPanel:
    before = set(pilot.app.migrations.panels())
    await open_dialog(pilot, name)
    await pilot.press("enter")
    await wait_for(pilot, lambda: len(set(pilot.app.migrations.panels()) - before) == 1, "a migration panel")
    return (set(pilot.app.migrations.panels()) - before).pop()


def plain(renderable) -> str:
    """A Rich renderable (a host's line in the dialog) as the text it shows, on one wide line."""
    from rich.console import Console

    console = Console(width=400, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def resident(lab: Lab, name: str) -> str:
    return lab.sim.db.field("VM", lab.sim.vm_ref(name), "resident_on")


async def until_finished(pilot, panel: MigrationPanel, timeout: float = 20) -> None:
    await wait_for(
        pilot, lambda: panel.ended_shown, f"the end of {panel.controller.plan.vm_name}'s move", timeout=timeout
    )


def panel_text(panel: MigrationPanel) -> str:
    return "\n".join([*panel.top.lines, panel.sparkline.text, *panel.info.lines])


async def test_dialog_lists_other_hosts_with_precheck_reasons(fastlab):
    app = create_app([fastlab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        dialog = await open_dialog(pilot, "cache-01")  # local disk on xcp-lab-1
        assert [h.name for h in dialog.hosts] == ["xcp-lab-2", "xcp-lab-3"]  # not its own host
        options = dialog.query_one("#migrate-hosts")
        two, three = (plain(options.get_option(h.ref).prompt) for h in dialog.hosts)
        # the disk is copied to the shared SR by default (storage motion: tests/tui/test_migrate_storage.py)
        assert "✓ usable, copies 30.0 GiB of disks" in two
        assert "✗ not enough free memory on xcp-lab-3: needs 4 GiB, host has 1.5 GiB" in three
        assert options.get_option(dialog.hosts[1].ref).disabled  # another SR would not cure that
        text = screen_text(app)
        assert "not enough free memory on xcp-lab-3" in text
        assert "127.0.10.31" in text  # the ping target defaults to the VM's address
        await pilot.press("escape")
        assert app.screen is app.main_screen and not app.migrations.panels()

        dialog = await open_dialog(pilot, "web-01")
        options = dialog.query_one("#migrate-hosts")
        assert options.highlighted_option.id == dialog.hosts[0].ref  # first usable: xcp-lab-2
        assert not options.get_option(dialog.hosts[0].ref).disabled
        assert options.get_option(dialog.hosts[1].ref).disabled  # xcp-lab-3 is low on memory
        assert "✓ usable" in screen_text(app)
        await pilot.press("escape")

        lab2 = next(h.ref for h in dialog.hosts if h.name == "xcp-lab-2")
        fastlab.sim.db.set("host", lab2, enabled=False)
        dialog = await open_dialog(pilot, "web-02")
        options = dialog.query_one("#migrate-hosts")
        assert all(options.get_option(h.ref).disabled for h in dialog.hosts)
        assert "xcp-lab-2 is disabled" in plain(options.get_option(lab2).prompt)
        await pilot.press("enter")
        assert isinstance(app.screen, MigrateDialog)  # nothing usable: nothing starts
        assert "No host can take this VM now" in screen_text(app)
        await pilot.press("escape")
        assert app.screen is app.main_screen and not app.migrations.panels()


async def test_migration_runs_to_complete_with_no_lost_pings(fastlab, state_dir):
    app = create_app([fastlab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        panel = await migrate(pilot, "web-01")
        assert panel.border_title == "web-01: xcp-lab-1 → xcp-lab-2"
        await wait_for(pilot, lambda: panel.controller.progress.phase == MigrationPhase.COPYING, "copying")
        await wait_for(
            pilot, lambda: "%" in panel.top.lines[0] and "copying memory" in panel.top.lines[0], "the progress line"
        )
        await wait_for(pilot, lambda: any(c in panel.sparkline.text for c in BARS), "sparkline bars")
        first = panel.sparkline.text
        await wait_for(pilot, lambda: panel.sparkline.text != first, "the sparkline to move")
        assert "probe: icmp" in panel_text(panel) or "probe: tcp" in panel_text(panel)
        await until_finished(pilot, panel)
        text = panel_text(panel)
        assert "Migration complete in " in text and ", 0 lost," in text and "longest gap" in text
        assert "hypervisor downtime: not reported by the xen backend" in text
        assert panel.border_subtitle == "complete"
        # the list follows the hypervisor's event
        store = app.sessions["lab"].store
        await wait_for(
            pilot,
            lambda: store.name_of(next(v for v in store.vms.values() if v.name == "web-01").host) == "xcp-lab-2",
            "the VM list to show the new host",
        )
        assert resident(fastlab, "web-01") == fastlab.sim.host_ref("xcp-lab-2")
        await pilot.pause(0.6)
        assert "web-01 now runs on xcp-lab-2" in screen_text(app)
        line = json.loads((state_dir / "migrations.jsonl").read_text())
        assert line["result"] == "success" and line["ping_lost"] == 0 and "demo" not in json.dumps(line)
        # dismiss once ended
        panel.focus()
        await pilot.press("x")
        await wait_for(pilot, lambda: not app.migrations.panels(), "the panel to go")


async def test_cancel_asks_then_leaves_vm_on_source(longlab):
    app = create_app([longlab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        panel = await migrate(pilot, "web-01")
        c = panel.controller
        await wait_for(
            pilot, lambda: c.progress.phase == MigrationPhase.COPYING and c.progress.cancellable, "a cancellable phase"
        )
        assert app.focused is panel
        await pilot.press("x")  # dismissing a running move is refused
        assert panel in app.migrations.panels()
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirm dialog")
        await pilot.press("y")
        await until_finished(pilot, panel)
        text = panel_text(panel)
        assert "Migration cancelled after" in text and "web-01 still runs on xcp-lab-1" in text
        assert resident(longlab, "web-01") == longlab.sim.host_ref("xcp-lab-1")
        assert panel.border_subtitle == "cancelled"


async def test_palette_cancels_a_running_migration_after_asking(longlab):
    app = create_app([longlab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        panel = await migrate(pilot, "web-01")
        c = panel.controller
        await wait_for(pilot, lambda: c.progress.cancellable, "a cancellable phase")
        app.main_screen.vm_list.focus()  # the palette works from anywhere, not just the panel
        await pilot.press("ctrl+p", *"cancel migration")
        await wait_for(pilot, lambda: "Cancel migration of web-01" in screen_text(app), "the cancel command")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirm dialog")
        await pilot.press("y")
        await until_finished(pilot, panel)
        assert c.record.result == "cancelled"
        assert resident(longlab, "web-01") == longlab.sim.host_ref("xcp-lab-1")


async def test_cancel_refused_in_final_phase(slowlab):
    app = create_app([slowlab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        panel = await migrate(pilot, "web-01")
        c = panel.controller
        await wait_for(pilot, lambda: c.progress.phase == MigrationPhase.FINISHING, "the final phase", timeout=15)
        await pilot.press("c")
        assert not isinstance(app.screen, ConfirmScreen)
        note = next(n for n in app._notifications if n.title == "Cannot cancel")
        assert "past the point where the hypervisor can still cancel it" in note.message
        await until_finished(pilot, panel)
        assert "Migration complete" in panel_text(panel)


async def test_failure_quotes_the_hypervisor(fastlab):
    app = create_app([fastlab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        panel = await migrate(pilot, "web-02")
        await wait_for(pilot, lambda: panel.controller.progress.phase == MigrationPhase.COPYING, "copying")
        fastlab.sim.set_power_state("web-02", "Halted")
        await until_finished(pilot, panel)
        text = panel_text(panel)
        assert "Migration failed after" in text
        assert "failed: XAPI: VM_BAD_POWER_STATE(" in text
        assert panel.border_subtitle == "FAILED"


async def test_second_migration_of_same_vm_is_refused_and_two_run_side_by_side(fastlab):
    app = create_app([fastlab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        first = await migrate(pilot, "web-01")
        await select_vm(pilot, "web-01")
        await pilot.press("m")
        assert app.screen is app.main_screen
        note = next(n for n in app._notifications if n.title == "Cannot migrate web-01")
        assert "web-01 is already migrating (xcp-lab-1 → xcp-lab-2)" in note.message
        second = await migrate(pilot, "app-01")
        assert second.border_title == "app-01: xcp-lab-2 → xcp-lab-1"
        await pilot.pause(0.1)
        a, b = first.region, second.region
        assert a.y == b.y and a.x != b.x and a.width > 40 and b.width > 40  # side by side
        await until_finished(pilot, first)
        await until_finished(pilot, second)
        assert "Migration complete" in panel_text(first) and "Migration complete" in panel_text(second)


async def test_m_explains_when_migration_is_impossible(fastlab, tmp_path):
    from poolctl.sim.libvirt import demo_config

    app = create_app([fastlab.pool(), demo_config(tmp_path / "kvm")])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await select_vm(pilot, "test-01")  # halted
        await pilot.press("m")
        assert app.screen is app.main_screen
        note = next(n for n in app._notifications if n.title == "Cannot migrate test-01")
        assert "only a running VM can be live-migrated" in note.message
        # the libvirt test driver: move the tree to the kvm pool and pick a VM there
        tree = app.main_screen.pool_tree
        await wait_for(pilot, lambda: app.sessions["kvm-demo"].connected, "the kvm demo pool")
        tree.move_cursor(tree.node_for("kvm-demo", "pool"))
        await wait_for(
            pilot,
            lambda: app.main_screen.scope.pool == "kvm-demo" and app.main_screen.vm_list.row_count > 0,
            "the kvm VMs",
        )
        app.main_screen.vm_list.focus()
        await pilot.pause()
        await pilot.press("m")
        assert app.screen is app.main_screen
        vm_name = app.main_screen.vm_list.cursor_vm.name
        note = next(n for n in app._notifications if n.title == f"Cannot migrate {vm_name}")
        assert "test driver" in note.message


async def test_history_lists_this_run_and_the_log(fastlab, state_dir):
    old = {
        "id": "old1",
        "time": "2020-05-01T10:00:00+00:00",
        "pool": "elsewhere",
        "vm": "ancient-vm",
        "source": "h1",
        "destination": "h2",
        "result": "failed",
        "duration_s": 3.0,
        "error": "XAPI: [BOOM]",
    }
    (state_dir / "migrations.jsonl").write_text(json.dumps(old) + "\n")
    app = create_app([fastlab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        panel = await migrate(pilot, "web-01")
        await pilot.press("H")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen), "the history screen")
        history = app.screen
        table = history.query_one("#history-table")
        await wait_for(pilot, lambda: table.row_count == 2, "two rows")
        running, logged = history.rows
        assert running["vm"] == "web-01" and running["result"].startswith("running")
        assert running["when"].endswith(" *") and running["route"] == "xcp-lab-1 → xcp-lab-2"
        assert logged["vm"] == "ancient-vm" and logged["result"] == "failed" and logged["when"] == "2020-05-01 10:00"
        text = screen_text(app)
        assert "XAPI: [BOOM]" in text  # brackets shown as they are, not read as markup
        # the running move becomes its record while the screen is open
        await until_finished(pilot, panel)
        await wait_for(pilot, lambda: history.rows[0]["result"] == "success", "the row to show the outcome")
        first = history.rows[0]
        assert first["pings"].endswith("/0") and first["when"].endswith(" *")
        assert "Migration complete in" in screen_text(app)  # the highlighted row, spelled out
        await pilot.press("down")
        await wait_for(pilot, lambda: "failed: XAPI: [BOOM]" in screen_text(app), "the detail line of the failed move")
        await pilot.press("escape")
        await pilot.press("H")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen), "the history screen again")
        await wait_for(pilot, lambda: len(app.screen.rows) == 2, "two rows, the move logged once")


async def test_history_fits_80_columns(fastlab, state_dir):
    from poolctl.tui.screens.history import fit_columns

    records = [
        {
            "id": f"r{i}",
            "time": f"2024-03-0{i + 1}T10:00:00+00:00",
            "pool": "production-pool",
            "vm": f"database-server-{i}",
            "source": "xcp-host-01",
            "destination": "xcp-host-02",
            "result": "failed",
            "duration_s": 3.0,
            "ping_sent": 30,
            "ping_lost": 2,
            "ping_longest_gap_s": 0.4,
            "downtime_ms": 120,
            "error": "XAPI: VM_MIGRATE_FAILED " * 4,
        }
        for i in range(3)
    ]
    (state_dir / "migrations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    app = create_app([fastlab.pool()])
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("H")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen), "the history screen")
        history = app.screen
        table = history.query_one("#history-table")
        await wait_for(pilot, lambda: table.row_count == 3, "three rows")
        assert table.virtual_size.width <= table.size.width  # no horizontal scrolling
        shown = [c.key for c, _ in fit_columns(history.rows, table.size.width - 1)]
        assert shown[:2] == ["when", "vm"] and "result" in shown and "downtime" not in shown
        text = screen_text(app)
        assert "database-server-0" in text and "failed" in text
        assert "production-pool: database-server-2 xcp-host-01 →" in text  # the detail line
    wide = fit_columns(history.rows, 400)
    assert [c.key for c, _ in wide] == [
        "when",
        "pool",
        "vm",
        "route",
        "result",
        "took",
        "pings",
        "gap",
        "downtime",
        "error",
    ]


async def test_quitting_mid_migration_asks_first_then_is_prompt_and_logged_unfinished(slowlab, state_dir):
    app = create_app([slowlab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        panel = await migrate(pilot, "web-01")
        await wait_for(pilot, lambda: panel.controller.progress.phase == MigrationPhase.COPYING, "copying")
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the quit question")
        text = screen_text(app)
        assert "1 migration is running: quit anyway?" in text
        assert "web-01: xcp-lab-1 → xcp-lab-2" in text and "poolctl stops watching it" in text
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen is app.main_screen, "the question to close")
        assert app.return_code is None and not panel.controller.finished.is_set()
        await pilot.press("ctrl+q")  # Textual's own quit key asks too
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the quit question again")
        await pilot.press("q")  # q again on the question quits
        await wait_for(pilot, lambda: app.return_code is not None, "the app to quit")
        # Measured against the move itself, not a wall-clock figure (CI is a loaded 2-core box):
        # the app was gone while the 6 s move still ran, so quitting did not wait for its end.
        assert not panel.controller.ended
    line = json.loads((state_dir / "migrations.jsonl").read_text())
    assert line["result"] == "unfinished" and "poolctl quit while the migration was running" in line["error"]


async def test_quit_does_not_ask_once_the_migrations_have_ended(fastlab, state_dir):
    app = create_app([fastlab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        panel = await migrate(pilot, "web-01")
        await until_finished(pilot, panel)
        await pilot.press("q")
        await wait_for(pilot, lambda: app.return_code is not None, "the app to quit")
    assert json.loads((state_dir / "migrations.jsonl").read_text())["result"] == "success"


async def test_config_migration_settings_are_the_dialogs_defaults(fastlab):
    from textual.widgets import Input

    from poolctl.config import MigrationSettings

    app = create_app([fastlab.pool()], migration=MigrationSettings(ping_interval=0.25, ping_port=2222))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        dialog = await open_dialog(pilot, "web-01")
        assert dialog.query_one("#migrate-interval", Input).value == "250"
        assert dialog.query_one("#migrate-port", Input).value == "2222"
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(app.migrations.runs) == 1, "the migration to start")
        plan = app.migrations.runs[0].plan
        assert plan.ping_interval == 0.25 and plan.ping_port == 2222


async def test_dialog_offers_the_backends_options_and_validates_fields(fastlab):
    """KVM-style options appear when the capabilities list them, and end up in the plan."""
    from dataclasses import replace

    from textual.widgets import Checkbox, Input

    app = create_app([fastlab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await select_vm(pilot, "web-01")
        session = app.sessions["lab"]
        store = session.store
        vm = app.main_screen.vm_list.cursor_vm
        caps = replace(
            session.backend.capabilities,
            migration_options=frozenset(
                {"max_downtime_ms", "bandwidth_mib_s", "auto_converge", "post_copy", "parallel", "compress"}
            ),
        )
        hosts = sorted((h for h in store.hosts.values() if h.ref != vm.host), key=lambda h: h.name)
        plans = []
        dialog = MigrateDialog("lab", session.backend, vm, hosts, "xcp-lab-1", caps)
        app.push_screen(dialog, plans.append)
        await wait_for(pilot, lambda: len(dialog.checks) == 2, "the pre-checks")
        dialog.query_one("#opt-max_downtime_ms", Input).value = "300"
        dialog.query_one("#opt-bandwidth_mib_s", Input).value = "500"
        dialog.query_one("#opt-auto_converge", Checkbox).value = True
        dialog.query_one("#migrate-interval", Input).value = "0"
        await pilot.press("enter")
        assert "ping interval (ms): must be between 1 and 10000, got 0" in screen_text(app)
        dialog.query_one("#migrate-interval", Input).value = "10001"  # the config's and the CLI's 10 s, too
        await pilot.press("enter")
        assert "ping interval (ms): must be between 1 and 10000, got 10001" in screen_text(app)
        dialog.query_one("#migrate-interval", Input).value = "50"
        dialog.query_one("#migrate-port", Input).value = "22"
        await pilot.press("enter")
        await wait_for(pilot, lambda: plans, "the dialog to close with a plan")
        plan = plans[0]
        assert plan.destination_name == "xcp-lab-2" and plan.ping_interval == 0.05 and plan.ping_port == 22
        assert plan.options.max_downtime_ms == 300 and plan.options.bandwidth_mib_s == 500
        assert plan.options.auto_converge
        # the rest is the tuner's: post-copy allowed if pre-copy stalls, each choice said
        assert plan.options.post_copy and not plan.options.post_copy_now
        assert "max-downtime 300 ms: set by hand" in plan.tuning and "bandwidth 500 MiB/s: set by hand" in plan.tuning
        assert plan.predicted["pause_ms"] and plan.predicted["duration_s"]
        assert plan.ping_address == "127.0.10.11"
