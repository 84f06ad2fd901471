"""The evacuate dialog's SR choice (storage motion, as `poolctl evacuate --sr`): with local disks
left to stay the VM with one cannot go and the dialog says how to let it; with an SR chosen the
plan is made again, the row says what is copied, and Evacuate moves every VM, the local disk
copied, against the real simulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from textual.widgets import Select

from poolctl.sim.xapi import Simulator
from poolctl.tui.app import create_app
from tests.support.tui import Lab, loaded, screen_text, served_lab, wait_for
from tests.tui.test_maintenance import open_evacuation, run_to_end

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("state_dir")]


@pytest.fixture
def fastlab() -> Iterator[Lab]:
    yield from served_lab(migration_seconds=0.5, storage_mib_s=30 * 1024)


def _sr_of_disk(sim: Simulator, vm: str) -> str:
    db = sim.db
    (vbd,) = [b for b in db.field("VM", sim.vm_ref(vm), "VBDs") if db.field("VBD", b, "type") == "Disk"]
    return db.field("SR", db.field("VDI", db.field("VBD", vbd, "VDI"), "SR"), "name_label")


async def test_choosing_an_sr_lets_the_local_disk_vm_go(fastlab):
    sim = fastlab.sim
    app = create_app([fastlab.pool()])
    async with app.run_test(size=(120, 45)) as pilot:
        await loaded(pilot)
        dialog = await open_evacuation(pilot, "xcp-lab-1")
        assert [p.vm.name for p in dialog.plan.blocked] == ["cache-01"]
        assert dialog.plan.needs_storage_motion == ("cache-01",)
        text = screen_text(app)  # wrapped in the dialog's box
        assert "Their local disks can be copied: choose an SR" in text
        assert "under 'local disks' above (storage motion)." in text
        assert not dialog.query_one("#bd-start").display
        choice = dialog.query_one("#bd-sr", Select)
        shared = next(s.ref for s in app.sessions["lab"].store.srs.values() if s.name == "iSCSI storage")
        choice.value = shared
        await wait_for(pilot, lambda: dialog.plan is not None and dialog.plan.ok, "the plan with the copy", timeout=20)
        (cache,) = [p for p in dialog.plan.moves if p.vm.name == "cache-01"]
        assert cache.disk_srs == (("xvda", shared),)
        text = screen_text(app)
        assert "(copies 30 GiB of disks)" in text
        assert "disk xvda: 30 GiB from 'Local storage xcp-lab-1' to 'iSCSI storage'" in text
        assert dialog.query_one("#bd-start").display
        panel = await run_to_end(pilot, dialog)
        assert panel.summary is not None and panel.summary.ok, panel.summary
        assert sim.db.field("host", sim.db.field("VM", sim.vm_ref("cache-01"), "resident_on"), "name_label") != (
            "xcp-lab-1"
        )
        assert _sr_of_disk(sim, "cache-01") == "iSCSI storage"
