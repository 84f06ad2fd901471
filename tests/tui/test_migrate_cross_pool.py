"""The migrate dialog's destinations of every pool: the real app with two pools (lab and dr, two
XAPI simulators that talk to each other, as `poolctl simulate --also dr` serves them). dr's hosts
come after lab's, named ``dr/HOST`` and pre-checked as a cross-pool move, the disk rows offering
dr's SRs; Enter moves the VM there and it leaves lab's inventory for dr's."""

from __future__ import annotations

import json

import pytest
from textual.widgets import Label, OptionList, Select

from poolctl.config import MigrationSettings
from poolctl.model import ConnectionStatus, MigrationPhase
from poolctl.tui.app import create_app
from poolctl.tui.screens.migrate import MigrateDialog
from tests.cli.test_migrate import PASSWORD, resident
from tests.cli.test_migrate_cross_pool import pools  # noqa: F401  (the fixture: lab and dr served)
from tests.support.tui import Lab, loaded, screen_text, wait_for
from tests.tui.test_migration_ui import open_dialog, panel_text, plain, until_finished

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("state_dir")]


def two_pools(pools):  # noqa: F811
    lab, dr, urls = pools
    return [
        Lab(lab, urls[0]).pool(name="lab", password=PASSWORD),
        Lab(dr, urls[1]).pool(name="dr", password="dr-" + PASSWORD),
    ]


def key_of(dialog: MigrateDialog, label: str) -> str:
    return next(d.key for d in dialog.destinations if d.label == label)


def sr_ref(sim, name: str) -> str:
    (ref,) = sim.db.find("SR", lambda r: r["name_label"] == name)
    return ref


async def all_checked(pilot, dialog: MigrateDialog) -> None:
    await wait_for(pilot, lambda: len(dialog.checks) == len(dialog.destinations), "every destination's pre-check")


async def highlight(pilot, dialog: MigrateDialog, key: str) -> None:
    hosts = dialog.query_one("#migrate-hosts", OptionList)
    hosts.focus()
    for _ in range(len(dialog.destinations)):
        option = hosts.highlighted_option
        if option is not None and option.id == key:
            break
        await pilot.press("down")
    await wait_for(pilot, lambda: (o := hosts.highlighted_option) is not None and o.id == key, f"{key} highlighted")


async def test_the_dialog_lists_the_other_pools_hosts_and_moves_the_vm_there(pools, state_dir):  # noqa: F811
    lab, dr, _ = pools
    uuid = lab.db.field("VM", lab.vm_ref("cache-01"), "uuid")
    app = create_app(two_pools(pools), migration=MigrationSettings(storage_rate=512))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, "lab")
        await loaded(pilot, "dr")
        dialog = await open_dialog(pilot, "cache-01")
        await all_checked(pilot, dialog)
        labels = [d.label for d in dialog.destinations]

        assert labels == ["xcp-lab-2", "xcp-lab-3", "dr/xcp-dr-1", "dr/xcp-dr-2"][: len(labels)] or (
            labels[-2:] == ["dr/xcp-dr-1", "dr/xcp-dr-2"] and not labels[0].startswith("dr/")
        ), labels
        two = key_of(dialog, "dr/xcp-dr-2")
        hosts = dialog.query_one("#migrate-hosts", OptionList)
        assert "dr/xcp-dr-2" in plain(hosts.get_option(two).prompt)
        assert "✓ usable, copies 30.0 GiB of disks" in plain(hosts.get_option(two).prompt)
        await highlight(pilot, dialog, two)
        nfs = sr_ref(dr, "NFS storage")
        assert dialog.checked[two].disk_srs == (("xvda", nfs),)  # dr's shared SR: the obvious default
        await wait_for(pilot, lambda: dialog.query_one("#disk-0", Select).value == nfs, "the disk row on dr's SR")
        await wait_for(pilot, lambda: two in dialog.predictions, "the prediction")
        text = screen_text(app)
        assert "dr/NFS storage · shared ·" in text
        assert "copy 30 GiB in all: about 60 s at 512 MiB/s" in str(dialog.query_one("#migrate-storage", Label).content)
        assert "dr/xcp-dr-2" in text
        assert "Enter migrate" in text  # the keys line: the dialog fits 80x24, the host list scrolls
        await pilot.press("enter")
        await wait_for(pilot, lambda: bool(app.migrations.panels()), "the migration panel")
        (panel,) = app.migrations.panels()
        assert panel.controller.plan.options.to_pool == "dr"
        await until_finished(pilot, panel, timeout=30)
        assert panel.controller.progress.phase == MigrationPhase.DONE, panel_text(panel)
        # the VM is dr's now, and gone from lab, in the simulators and in the app's stores
        assert resident(dr, "cache-01") == "xcp-dr-2"
        assert dr.db.field("VM", dr.vm_ref("cache-01"), "uuid") == uuid
        with pytest.raises(KeyError):
            lab.vm_ref("cache-01")
        sessions = app.sessions
        await wait_for(
            pilot,
            lambda: (
                any(v.uuid == uuid for v in sessions["dr"].store.vms.values())
                and not any(v.uuid == uuid for v in sessions["lab"].store.vms.values())
            ),
            "cache-01 in dr's inventory, gone from lab's",
        )
        # on screen: lab's list (the filter still on) has no cache-01; dr's shows it on xcp-dr-2
        assert "No VMs match “cache-01”" in screen_text(app)
        tree = app.main_screen.pool_tree
        tree.move_cursor(tree.node_for("dr", "pool"))
        await wait_for(pilot, lambda: "VMs in dr (1)" in screen_text(app), "dr's list", timeout=5)
        row = next(line for line in screen_text(app).splitlines() if "cache-01" in line and "xcp-dr-2" in line)
        assert "running" in row.casefold(), row
    (line,) = [json.loads(x) for x in (state_dir / "migrations.jsonl").read_text().splitlines()]
    assert line["result"] == "success" and line["pool"] == "lab"
    assert line["destination"] == "dr/xcp-dr-2" and line["now_on"] == "dr/xcp-dr-2"
    for secret in (PASSWORD, "dr-" + PASSWORD, *dr.sessions._records, *lab.sessions._records):
        assert secret not in json.dumps(line)


async def test_a_pool_that_is_not_connected_is_not_offered_and_the_dialog_says_why(pools):  # noqa: F811
    lab, dr, urls = pools
    configs = [
        Lab(lab, urls[0]).pool(name="lab", password=PASSWORD),
        Lab(dr, urls[1]).pool(name="dr", password="wrong-" + PASSWORD),  # dr refuses the login
    ]
    app = create_app(configs)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, "lab")
        dr_session = app.sessions["dr"]
        await wait_for(pilot, lambda: dr_session.state.status == ConnectionStatus.FAILED, "dr's refused login")
        dialog = await open_dialog(pilot, "cache-01")
        assert [d.label for d in dialog.destinations] == ["xcp-lab-2", "xcp-lab-3"]
        note = str(dialog.query_one("#migrate-elsewhere", Label).content)
        assert note.startswith("not offered: dr (failed: "), note
        assert "wrong-" + PASSWORD not in screen_text(app)
        assert "not offered: dr (failed" in screen_text(app)
        assert "Enter migrate" in screen_text(app)  # still fits 80x24
