"""Storage motion from the migrate dialog, keyboard only: a row per disk with the SR it goes to,
the copy and its estimate before Enter, the disk phase then the memory in the panel.

The real app and Xen backend against the XAPI simulator (host.migrate_receive,
VM.assert_can_migrate, Async.VM.migrate_send). cache-01 runs on xcp-lab-1 with its 30 GiB disk
on xcp-lab-1's local SR; "iSCSI storage" is the pool's shared SR.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from textual import events
from textual.widgets import Label, Select
from textual.widgets._select import SelectOverlay

from poolctl.config import MigrationSettings
from poolctl.model import MigrationPhase, PowerOp
from poolctl.tui.app import create_app
from poolctl.tui.screens.migrate import MigrateDialog
from tests.support.jsonrpc import JsonRpc
from tests.support.tui import Lab, loaded, screen_text, served_lab, wait_for
from tests.tui.test_migration_ui import migrate, open_dialog, panel_text, plain, resident, until_finished

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("state_dir")]

GIB = 1024**3


@pytest.fixture
def lab() -> Iterator[Lab]:
    # the 30 GiB disk in 2 s, then 1 s of memory
    yield from served_lab(migration_seconds=1.0, storage_mib_s=30 * 1024 / 2.0)


def sr_ref(lab: Lab, name: str) -> str:
    (ref,) = lab.sim.db.find("SR", lambda r: r["name_label"] == name)
    return ref


def disk_srs(lab: Lab, vm: str) -> list[str]:
    """The names of the SRs the VM's disks are on, as the simulator has them."""
    db = lab.sim.db
    vdis = [db.field("VBD", b, "VDI") for b in db.field("VM", lab.sim.vm_ref(vm), "VBDs")]
    return [db.field("SR", db.field("VDI", v, "SR"), "name_label") for v in vdis if db.exists("VDI", v)]


def host_ref(dialog: MigrateDialog, name: str) -> str:
    return next(h.ref for h in dialog.hosts if h.name == name)


def prompt(dialog: MigrateDialog, host: str) -> str:
    return plain(dialog.query_one("#migrate-hosts").get_option(host).prompt)


def storage_words(dialog: MigrateDialog) -> str:
    """What the dialog says of the highlighted host's disk copy (the screen wraps it)."""
    return str(dialog.query_one("#migrate-storage", Label).content)


async def listed(pilot, select: Select) -> None:
    """Enter on a disk's row has opened its SR list, and the list has the keys."""
    await wait_for(pilot, lambda: select.expanded and isinstance(pilot.app.focused, SelectOverlay), "the SR list")


async def pick(pilot, dialog: MigrateDialog, select: Select, index: int) -> None:
    """In the open SR list: down to the ``index``-th SR, then Enter."""
    overlay = select.query_one(SelectOverlay)
    start = overlay.highlighted or 0
    await pilot.press(*["down" if index > start else "up"] * abs(index - start))
    await wait_for(pilot, lambda: overlay.highlighted == index, f"SR {index} highlighted ({state(dialog, select)})")
    await pilot.press("enter")


def state(dialog: MigrateDialog, select: Select) -> str:
    """What a failed wait reports: where the keys went and what the rows hold."""
    overlay = select.query_one(SelectOverlay)
    return (
        f"focused {dialog.focused!r}, value {select.value}, highlighted {overlay.highlighted}, "
        f"picked {dialog.targets.picked if dialog.targets else None}"
    )


async def checked(pilot, dialog: MigrateDialog, host: str, disk_srs: tuple[tuple[str, str], ...]) -> None:
    await wait_for(
        pilot,
        lambda: host in dialog.checked and dialog.checked[host].disk_srs == disk_srs and host not in dialog.pending,
        f"the pre-check of {host} with {disk_srs}",
    )


async def test_local_disk_goes_to_the_shared_sr_by_default_and_the_panel_says_disks_then_memory(lab, state_dir):
    app = create_app([lab.pool()], migration=MigrationSettings(storage_rate=512))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        dialog = await open_dialog(pilot, "cache-01")
        two, iscsi = host_ref(dialog, "xcp-lab-2"), sr_ref(lab, "iSCSI storage")
        await checked(pilot, dialog, two, (("xvda", iscsi),))
        assert dialog.query_one("#disk-0", Select).value == iscsi  # xcp-lab-2 cannot see the local SR
        assert not dialog.targets.picked  # the rows' first values are the defaults, not picks
        assert "✓ usable, copies 30.0 GiB of disks" in prompt(dialog, two)
        await wait_for(pilot, lambda: two in dialog.predictions, "the prediction")
        text = screen_text(app)
        assert "xvda 30.0 GiB from Local s… → iSCSI storage · shared ·" in text
        assert "copy 30 GiB in all: about 60 s at 512 MiB/s ([migration] storage_rate);" in text
        assert "predicted: " in text  # the memory's prediction stays
        assert "Enter migrate (on a disk or network: choose)" in text  # the last line: it fits at 80x24

        await pilot.press("escape")
        panel = await migrate(pilot, "cache-01")
        assert panel.controller.plan.options.disk_srs == (("xvda", iscsi),)
        await wait_for(
            pilot,
            lambda: panel.controller.progress.phase == MigrationPhase.COPYING_STORAGE and panel.top.lines[0],
            "the disk phase",
        )
        await pilot.pause(0.6)  # a panel tick
        assert panel.top.lines[0].startswith("copying disks, then memory ")
        assert "first the disks (30 GiB in all: about 60 s at 512 MiB/s), then the memory" in panel_text(panel)
        await until_finished(pilot, panel)
        text = panel_text(panel)
        assert "Migration complete in " in text and "cache-01 now runs on xcp-lab-2" in text
        assert "copied 30.0 GiB of disks, then the memory, in 0:0" in text
        assert resident(lab, "cache-01") == two
        assert disk_srs(lab, "cache-01") == ["iSCSI storage"]
        (rec,) = [json.loads(line) for line in (state_dir / "migrations.jsonl").read_text().splitlines()]
        assert rec["options"]["disk_srs"] == [["xvda", iscsi]]
        assert rec["measured"]["disk_copied_mib"] == 30 * 1024 and rec["measured"]["disk_rate_mib_s"] > 0

        # the next estimate is at the rate that move measured
        await pilot.press("x")
        dialog = await open_dialog(pilot, "monitor-01")  # 50 GiB on xcp-lab-2's local SR
        one = host_ref(dialog, "xcp-lab-1")
        await checked(pilot, dialog, one, (("xvda", iscsi),))
        rate = rec["measured"]["disk_rate_mib_s"]
        words = storage_words(dialog)
        assert words.startswith("copy 50 GiB in all: about ")
        assert f" at {rate:g} MiB/s (measured: cache-01's move at " in words


async def test_a_pick_is_kept_per_host_and_a_new_destination_recomputes_the_defaults(lab):
    app = create_app([lab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        session = app.sessions["lab"]
        # room for cache-01 on xcp-lab-3 too: two destinations to choose from
        session.backend.power(lab.sim.vm_ref("build-01"), PowerOp.FORCE_OFF)
        dialog = await open_dialog(pilot, "cache-01")
        two, three = host_ref(dialog, "xcp-lab-2"), host_ref(dialog, "xcp-lab-3")
        iscsi, local2, local3 = (
            sr_ref(lab, n) for n in ("iSCSI storage", "Local storage xcp-lab-2", "Local storage xcp-lab-3")
        )
        await checked(pilot, dialog, three, (("xvda", iscsi),))
        assert dialog.checks[two].ok and dialog.checks[three].ok
        hosts = dialog.query_one("#migrate-hosts")
        select = dialog.query_one("#disk-0", Select)
        # xcp-lab-3 may answer first and be highlighted a moment: the rows follow the highlight
        # by a message, so wait for them to show xcp-lab-2 before choosing in them
        await wait_for(
            pilot,
            lambda: hosts.highlighted_option.id == two and dialog.targets.host == two and select.value == iscsi,
            f"xcp-lab-2's rows in view ({state(dialog, select)})",
        )

        await pilot.press("tab")
        assert dialog.focused is select
        await pilot.press("enter")  # opens the SR list: the dialog's Enter lets it through
        await listed(pilot, select)
        assert select.expanded and isinstance(app.screen, MigrateDialog) and not app.migrations.panels()
        await pick(pilot, dialog, select, 1)  # iSCSI storage, then xcp-lab-2's local SR
        await wait_for(pilot, lambda: select.value == local2, f"the pick ({state(dialog, select)})")
        await checked(pilot, dialog, two, (("xvda", local2),))
        assert "✓ usable, copies 30.0 GiB of disks" in prompt(dialog, two)
        assert "stays" not in screen_text(app)

        await pilot.press("shift+tab", "down")  # xcp-lab-3 cannot see xcp-lab-2's local SR
        await wait_for(pilot, lambda: hosts.highlighted_option.id == three, "xcp-lab-3 highlighted")
        await wait_for(pilot, lambda: select.value == iscsi, "the default for xcp-lab-3")
        await pilot.press("tab", "enter")
        await listed(pilot, select)
        listing = select.query_one(SelectOverlay)
        overlay = "\n".join(plain(listing.get_option_at_index(i).prompt) for i in range(listing.option_count))
        assert "iSCSI storage · shared" in overlay and "Local storage xcp-lab-3 · local" in overlay
        assert "xcp-lab-2" not in overlay
        await pilot.press("escape")  # closes the list, not the dialog
        assert isinstance(app.screen, MigrateDialog) and not select.expanded

        await pilot.press("shift+tab", "up")
        await wait_for(pilot, lambda: hosts.highlighted_option.id == two and select.value == local2, "the pick again")
        await checked(pilot, dialog, two, (("xvda", local2),))
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(app.migrations.panels()) == 1, "a migration panel")
        await until_finished(pilot, app.migrations.panels()[0])
        assert resident(lab, "cache-01") == two
        assert disk_srs(lab, "cache-01") == ["Local storage xcp-lab-2"]


async def test_a_full_sr_is_said_and_another_sr_cures_it(lab):
    iscsi = sr_ref(lab, "iSCSI storage")
    size = lab.sim.db.field("SR", iscsi, "physical_size")
    lab.sim.db.set("SR", iscsi, physical_utilisation=size - 10 * GIB)  # 10 GiB left: the disk is 30
    app = create_app([lab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        dialog = await open_dialog(pilot, "cache-01")
        two, local2 = host_ref(dialog, "xcp-lab-2"), sr_ref(lab, "Local storage xcp-lab-2")
        select = dialog.query_one("#disk-0", Select)
        # no shared SR has room: the default is the SR with the most free space xcp-lab-2 sees
        await checked(pilot, dialog, two, (("xvda", local2),))
        assert select.value == local2 and dialog.checks[two].ok

        await pilot.press("tab", "enter")
        await listed(pilot, select)
        await pick(pilot, dialog, select, 0)  # the shared SR after all
        await checked(pilot, dialog, two, (("xvda", iscsi),))
        why = "not enough space on SR 'iSCSI storage': the copy needs 30 GiB, it has 10 GiB free"
        assert why in prompt(dialog, two)
        assert f"cannot move to xcp-lab-2 so: {why}" == storage_words(dialog)
        assert not dialog.query_one("#migrate-hosts").get_option(two).disabled  # another SR cures it
        await pilot.press("shift+tab", "enter")
        assert isinstance(app.screen, MigrateDialog) and not app.migrations.panels()
        assert "choose other SRs for them" in screen_text(app)

        await pilot.press("tab", "enter")
        await listed(pilot, select)
        await pick(pilot, dialog, select, 1)
        await checked(pilot, dialog, two, (("xvda", local2),))
        assert dialog.checks[two].ok and storage_words(dialog).startswith(
            "copy 30 GiB in all: about 5 min at 100 MiB/s"
        )


async def test_tab_then_enter_in_one_burst_opens_the_sr_list_and_starts_nothing(lab):
    """A terminal delivers keys typed (or pasted) fast in one read: Enter must see Tab's focus move."""
    app = create_app([lab.pool()])
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        dialog = await open_dialog(pilot, "cache-01")
        await wait_for(pilot, lambda: dialog.checks[host_ref(dialog, "xcp-lab-2")].ok, "xcp-lab-2 usable")
        select = dialog.query_one("#disk-0", Select)
        app.post_message(events.Key("tab", "\t"))
        app.post_message(events.Key("enter", "\r"))
        await listed(pilot, select)
        assert isinstance(app.screen, MigrateDialog) and not app.migrations.panels()


async def test_hostile_sr_names_are_shown_escaped_in_the_disk_rows(lab):
    rpc = JsonRpc(lab.url, "root", "demo")
    for name, hostile in (("iSCSI storage", "[bold]iSCSI\x1b[2J"), ("Local storage xcp-lab-1", "\u202elocal-1")):
        (ref,) = rpc.api("SR.get_by_name_label", name)
        rpc.api("SR.set_name_label", ref, hostile)
    app = create_app([lab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        dialog = await open_dialog(pilot, "cache-01")
        await wait_for(pilot, lambda: dialog.checks[host_ref(dialog, "xcp-lab-2")].ok, "xcp-lab-2 usable")
        await pilot.press("tab", "enter")
        await listed(pilot, dialog.query_one("#disk-0", Select))
        text = screen_text(app)
        assert "xvda 30.0 GiB from <U+202E>local-1" in text
        assert "[bold]iSCSI\\x1b[2J · shared" in text  # markup shown as typed, not interpreted
        assert not any(c in text for c in ("\x1b", "\u202e"))
