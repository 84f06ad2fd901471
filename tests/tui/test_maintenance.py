"""Pilot tests of host maintenance from the keyboard: host states in words, the evacuation dialog
and panel, disable/enable with restore, and moving marked VMs, against the real simulator.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from poolctl.tui.app import create_app
from poolctl.tui.screens.batch_dialog import BatchDialog
from poolctl.tui.screens.confirm import ConfirmScreen
from poolctl.tui.screens.migrate import MigrateDialog
from poolctl.tui.widgets.batch_panel import BatchPanel
from poolctl.tui.widgets.vm_list import MARK
from tests.support.tui import Lab, loaded, screen_text, served_lab, wait_for

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("state_dir")]


@pytest.fixture
def fastlab() -> Iterator[Lab]:
    yield from served_lab(migration_seconds=2.0)


def host_ref(app, name: str) -> str:
    store = app.sessions["lab"].store
    return next(h.ref for h in store.hosts.values() if h.name == name)


def host_label(app, name: str) -> str:
    node = app.main_screen.pool_tree.node_for("lab", "host", host_ref(app, name))
    return node.label.plain


async def select_host(pilot, name: str) -> None:
    app = pilot.app
    app.main_screen.pool_tree.focus()
    for _ in range(8):
        picked = app.main_screen.selected_host()
        if picked is not None and picked[1].name == name:
            return
        await pilot.press("down")
    raise AssertionError(f"no host {name} in the tree")


async def open_evacuation(pilot, name: str) -> BatchDialog:
    app = pilot.app
    await select_host(pilot, name)
    await pilot.press("e")
    await wait_for(pilot, lambda: isinstance(app.screen, BatchDialog), "the evacuation dialog")
    dialog = app.screen
    await wait_for(pilot, lambda: dialog.plan is not None, "the plan", timeout=20)
    return dialog


async def run_to_end(pilot, dialog: BatchDialog) -> BatchPanel:
    app = pilot.app
    dialog.query_one("#bd-start").press()
    await wait_for(pilot, lambda: len(app.migrations.batches.panels()) == 1, "the batch panel")
    panel = app.migrations.batches.panels()[0]
    await wait_for(pilot, lambda: panel.ended, "the end of the batch", timeout=60)
    return panel


async def test_evacuate_dialog_plans_a_moveable_host(fastlab):
    app = create_app([fastlab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        dialog = await open_evacuation(pilot, "xcp-lab-3")
        plan = dialog.plan
        assert plan.ok and {p.vm.name for p in plan.moves} == {"db-02", "build-01"}
        assert all(p.destination is not None and p.destination.name != "xcp-lab-3" for p in plan.moves)
        text = screen_text(app)
        assert "db-02" in text and "build-01" in text and "→ xcp-lab-" in text
        assert dialog.query_one("#bd-start").display
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is app.main_screen, "the dialog to close")
        assert host_label(app, "xcp-lab-3").split()[1] == "up"  # nothing was done


async def test_evacuate_dialog_names_the_vm_with_a_local_disk_and_offers_no_start(fastlab):
    app = create_app([fastlab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        dialog = await open_evacuation(pilot, "xcp-lab-1")
        assert not dialog.plan.ok
        assert [p.vm.name for p in dialog.plan.blocked] == ["cache-01"]
        text = screen_text(app)
        assert "✗ cache-01" in text and "local SR" in text
        assert "Nothing can move" in text
        assert not dialog.query_one("#bd-start").display
        dialog.action_start()  # Enter on the batch field, say: still nothing starts
        await pilot.pause(0.2)
        assert isinstance(app.screen, BatchDialog)
        assert not app.migrations.batches.panels()
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is app.main_screen, "the dialog to close")
        assert host_label(app, "xcp-lab-1").split()[1] == "up"  # refused: left as it is


async def test_full_evacuation_then_enable_and_restore(fastlab, state_dir):
    app = create_app([fastlab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        dialog = await open_evacuation(pilot, "xcp-lab-3")
        panel = await run_to_end(pilot, dialog)
        assert [panel.rows[r].state for r in panel.order] == ["done", "done"]
        assert panel.summary is not None and panel.summary.ok
        store = app.sessions["lab"].store
        ref = host_ref(app, "xcp-lab-3")
        await wait_for(pilot, lambda: store.hosts[ref].maintenance, "xcp-lab-3 in maintenance")
        await wait_for(pilot, lambda: "maintenance" in host_label(app, "xcp-lab-3"), "the tree to say so")
        assert not [v for v in store.vms.values() if v.host == ref and v.power_state.value == "running"]
        text = screen_text(app)
        assert "2 of 2 moved" in text and "lost" in text and "stays in maintenance" in text
        records = [json.loads(line) for line in (state_dir / "migrations.jsonl").read_text().splitlines()]
        evacuation = [r for r in records if r.get("kind") == "evacuation"]
        assert len(evacuation) == 1 and evacuation[0]["result"] == "success"
        assert sorted(evacuation[0]["moved"]) == ["build-01", "db-02"]
        assert len([r for r in records if "kind" not in r or r.get("kind") == "migration"]) >= 2

        # x closes the ended panel
        panel.focus()
        await pilot.press("x")
        await wait_for(pilot, lambda: not app.migrations.batches.panels(), "the panel to go")
        # the details say what a restore would bring back
        await wait_for(pilot, lambda: "Evacuated" in screen_text(app), "the host's evacuated list in its details")
        evacuated = next(line for line in screen_text(app).splitlines() if "Evacuated" in line)
        assert "build-01" in evacuated and "db-02" in evacuated

        # D on the host in maintenance: enable, then the offer to bring its VMs back
        await select_host(pilot, "xcp-lab-3")
        await pilot.press("D")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
        assert "Enable xcp-lab-3" in screen_text(app)
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, BatchDialog), "the restore offer", timeout=20)
        restore = app.screen
        await wait_for(pilot, lambda: restore.plan is not None, "the restore plan", timeout=20)
        assert {p.vm.name for p in restore.plan.moves} == {"db-02", "build-01"}
        back = await run_to_end(pilot, restore)
        assert [back.rows[r].state for r in back.order] == ["done", "done"]
        await wait_for(pilot, lambda: store.hosts[ref].enabled, "xcp-lab-3 enabled")
        on = {v.name for v in store.vms.values() if v.host == ref}
        assert {"db-02", "build-01"} <= on
        assert host_label(app, "xcp-lab-3").split()[1] == "up"


async def test_toggle_disables_and_enables_a_host_asking_first(fastlab):
    app = create_app([fastlab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await select_host(pilot, "xcp-lab-2")
        ref = host_ref(app, "xcp-lab-2")
        store = app.sessions["lab"].store
        await pilot.press("D")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
        assert "Disable xcp-lab-2" in screen_text(app)
        await pilot.press("n")  # no: nothing changes
        await pilot.pause(0.3)
        assert store.hosts[ref].enabled
        await pilot.press("D")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question again")
        await pilot.press("y")
        await wait_for(pilot, lambda: not store.hosts[ref].enabled, "xcp-lab-2 disabled")
        await wait_for(pilot, lambda: host_label(app, "xcp-lab-2").split()[1] == "disabled", "the tree to say so")
        await pilot.press("D")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the enable question")
        await pilot.press("y")
        await wait_for(pilot, lambda: store.hosts[ref].enabled, "xcp-lab-2 enabled")
        await wait_for(pilot, lambda: host_label(app, "xcp-lab-2").split()[1] == "up", "the tree to say so")
        assert app.screen is app.main_screen  # no evacuation on record: no restore offer


async def test_marking_two_vms_and_moving_them(fastlab):
    app = create_app([fastlab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await select_host(pilot, "xcp-lab-1")
        vm_list = app.main_screen.vm_list
        vm_list.focus()
        await pilot.pause()
        names = [app.sessions["lab"].store.vms[r].name for r in vm_list.refs]
        assert names[:3] == ["cache-01", "db-01", "web-01"]
        await pilot.press("down", "space", "space")  # db-01, web-01
        assert [v.name for v in vm_list.marked] == ["db-01", "web-01"]
        text = screen_text(app)
        assert "2 marked" in text and f"{MARK}db-01" in text and f"{MARK}web-01" in text
        await pilot.press("up", "space")  # unmark web-01 then mark it again: space toggles
        assert [v.name for v in vm_list.marked] == ["db-01"]
        await pilot.press("up", "space")
        assert [v.name for v in vm_list.marked] == ["db-01", "web-01"]
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, BatchDialog), "the bulk move dialog")
        dialog = app.screen
        await wait_for(pilot, lambda: dialog.plan is not None, "the plan", timeout=20)
        dest = dialog.destination
        assert dest is not None and app.sessions["lab"].store.hosts[dest].name != "xcp-lab-1"
        assert dialog.plan.ok and len(dialog.plan.moves) == 2
        panel = await run_to_end(pilot, dialog)
        assert [panel.rows[r].state for r in panel.order] == ["done", "done"]
        store = app.sessions["lab"].store
        await wait_for(
            pilot,
            lambda: {store.vms[r].host for r in store.vms if store.vms[r].name in ("db-01", "web-01")} == {dest},
            "both on the destination",
        )
        assert not vm_list.marked  # the move took the marks


async def test_m_without_marks_keeps_the_single_vm_dialog(fastlab):
    app = create_app([fastlab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        app.main_screen.vm_list.focus()
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, MigrateDialog), "the migrate dialog")


async def test_cancel_asks_first_and_starts_no_more(fastlab):
    app = create_app([fastlab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        dialog = await open_evacuation(pilot, "xcp-lab-3")
        dialog.query_one("#bd-batch").value = "1"
        dialog.query_one("#bd-start").press()
        await wait_for(pilot, lambda: len(app.migrations.batches.panels()) == 1, "the batch panel")
        panel = app.migrations.batches.panels()[0]
        await wait_for(pilot, lambda: any(r.controller is not None for r in panel.rows.values()), "a move")
        panel.focus()
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
        assert "Cancel moves" in screen_text(app)
        await pilot.press("y")
        await wait_for(pilot, lambda: panel.ended, "the end of the batch", timeout=60)
        states = [panel.rows[r].state for r in panel.order]
        assert "not started" in states  # the second never started
        assert panel.summary is not None and panel.summary.cancelled


async def test_host_states_in_words_down_too(fastlab):
    app = create_app([fastlab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        assert [host_label(app, h).split()[1] for h in ("xcp-lab-1", "xcp-lab-2", "xcp-lab-3")] == ["up"] * 3
        fastlab.sim.set_host_live("xcp-lab-2", False)
        await wait_for(pilot, lambda: host_label(app, "xcp-lab-2").split()[1] == "down", "xcp-lab-2 shown down")


async def test_palette_offers_the_host_and_marked_vm_actions(fastlab):
    app = create_app([fastlab.pool()], keymap={"host.evacuate": "f7"})
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await select_host(pilot, "xcp-lab-3")
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: "Evacuate host xcp-lab-3" in screen_text(app), "the palette's commands")
        text = screen_text(app)
        assert "Disable host xcp-lab-3" in text and "key f7" in text
        await pilot.press(*"evacuate host")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, BatchDialog), "the evacuation dialog")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is app.main_screen, "the dialog to close")
        app.main_screen.vm_list.focus()
        await pilot.press("space")
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: "Move 1 marked VM" in screen_text(app), "the marked VM's command")
        assert "Move 1 marked VMs" not in screen_text(app)


async def test_a_batch_panel_takes_a_row_above_the_migration_panels(fastlab):
    app = create_app([fastlab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await pilot.press("slash", *"web-01", "enter")
        await wait_for(pilot, lambda: getattr(app.main_screen.vm_list.cursor_vm, "name", "") == "web-01", "web-01")
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, MigrateDialog), "the migrate dialog")
        migrate = app.screen
        await wait_for(pilot, lambda: len(migrate.checks) == len(migrate.hosts), "every pre-check")
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(app.migrations.panels()) == 1, "the migration panel")
        await pilot.press("escape")  # the filter
        dialog = await open_evacuation(pilot, "xcp-lab-3")
        dialog.query_one("#bd-start").press()
        await wait_for(pilot, lambda: len(app.migrations.batches.panels()) == 1, "the batch panel")
        await pilot.pause(0.3)
        single, batch = app.migrations.panels()[0], app.migrations.batches.panels()[0]
        assert batch.region.bottom <= single.region.y  # above it, in a row of its own
        assert batch.region.width > single.region.width  # across both columns
        await wait_for(pilot, lambda: batch.ended and single.controller.finished.is_set(), "both to end", timeout=60)
