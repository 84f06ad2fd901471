"""The evacuate dialog's migration network (as `poolctl evacuate --network`), keyboard only: the
pool's networks, the management network by default; a pick makes the plan again over that
network, so a network the destinations cannot receive on blocks the plan in words and offers no
Evacuate, and a network they can receive on carries every move of the batch (host.migrate_receive
on it, VM.migrate_send). The real app and Xen backend against the XAPI simulator; the VLAN is
made through the real XenAPI SDK (tests/cli/test_evacuate_network.py).

xcp-lab-3 runs db-02 and build-01 (shared disks); xcp-lab-1 and xcp-lab-2 have room for both.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from textual.widgets import Select

from poolctl.backends.xen.backend import XenBackend
from poolctl.tui.app import create_app
from poolctl.tui.screens.batch_dialog import BatchDialog
from tests.cli.test_evacuate_network import VLAN
from tests.support.jsonrpc import JsonRpc
from tests.support.tui import Lab, choose_option, loaded, screen_text, served_lab, wait_for
from tests.tui.test_maintenance import open_evacuation, run_to_end

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("state_dir")]


@pytest.fixture
def fastlab() -> Iterator[Lab]:
    yield from served_lab(migration_seconds=0.5)


def vlan_on(lab: Lab, host: str, ip: str) -> str:
    """A VLAN network with an address on ``host`` only, as an admin sets one up; its ref."""
    rpc = JsonRpc(lab.url, "root", "demo")
    net = str(
        rpc.api("network.create", {"name_label": VLAN, "name_description": "", "MTU": "1500", "other_config": {}})
    )
    db, host_ref = lab.sim.db, lab.sim.host_ref(host)
    (eth1,) = db.find("PIF", lambda r: r["host"] == host_ref and r["device"] == "eth1" and r["physical"])
    untagged = rpc.api("VLAN.get_untagged_PIF", rpc.api("VLAN.create", eth1, "42", net))
    rpc.api("PIF.reconfigure_ip", untagged, "Static", ip, "255.255.255.0", "", "")
    return net


def net_ref(lab: Lab, name: str) -> str:
    (ref,) = lab.sim.db.find("network", lambda r: r["name_label"] == name)
    return ref


async def choose_network(pilot, dialog: BatchDialog, name: str) -> None:
    await choose_option(pilot, dialog, "bd-network", name, key="shift+tab", presses=6)


async def planned_over(pilot, dialog: BatchDialog, network: str | None) -> None:
    await wait_for(
        pilot,
        lambda: dialog.network == network and dialog.plan is not None,
        f"the plan over {network}",
        timeout=20,
    )


async def test_a_network_picked_carries_every_move_of_the_evacuation(fastlab, state_dir):
    vlan = vlan_on(fastlab, "xcp-lab-2", "127.0.42.2")
    app = create_app([fastlab.pool()])
    async with app.run_test(size=(120, 45)) as pilot:
        await loaded(pilot)
        dialog = await open_evacuation(pilot, "xcp-lab-3")
        select = dialog.query_one("#bd-network", Select)
        assert select.value == "" and dialog.network is None  # the management network
        assert "network default: the host's management network" in screen_text(app)
        assert all(p.network is None for p in dialog.plan.moves)

        await choose_network(pilot, dialog, VLAN)
        await planned_over(pilot, dialog, vlan)
        plan = dialog.plan
        # xcp-lab-1 has no interface on the VLAN: the plan made over it sends both to xcp-lab-2
        assert plan.ok and {p.vm.name for p in plan.moves} == {"db-02", "build-01"}
        assert {p.destination.name for p in plan.moves} == {"xcp-lab-2"}
        assert all(p.network == vlan for p in plan.moves)
        assert f"network {VLAN}" in screen_text(app)
        assert dialog.query_one("#bd-start").display

        panel = await run_to_end(pilot, dialog)
        assert panel.summary is not None and panel.summary.ok, panel.summary
        # the batch's controllers (the app's list of this run's moves) sent each move over it
        assert sorted(c.plan.vm_name for c in app.migrations.runs) == ["build-01", "db-02"]
        assert {c.plan.options.network for c in app.migrations.runs} == {vlan}
    sim = fastlab.sim
    lab2 = sim.host_ref("xcp-lab-2")
    assert all(sim.db.field("VM", sim.vm_ref(vm), "resident_on") == lab2 for vm in ("db-02", "build-01"))
    (server,) = sim._servers
    made = server.stats.snapshot()
    assert made.get("Async.VM.migrate_send") == 2 and not made.get("Async.VM.pool_migrate"), made
    lines = [json.loads(line) for line in (state_dir / "migrations.jsonl").read_text().splitlines()]
    moves = [e for e in lines if "kind" not in e]
    assert len(moves) == 2 and all(e["result"] == "success" and e["options"]["network"] == vlan for e in moves)


async def test_a_network_without_an_address_blocks_the_plan_until_another_is_picked(fastlab, state_dir):
    app = create_app([fastlab.pool()])
    async with app.run_test(size=(120, 45)) as pilot:
        await loaded(pilot)
        dialog = await open_evacuation(pilot, "xcp-lab-3")
        vm_net = net_ref(fastlab, "VM network")
        await choose_network(pilot, dialog, "VM network")
        await planned_over(pilot, dialog, vm_net)
        assert {p.vm.name for p in dialog.plan.blocked} == {"db-02", "build-01"}
        assert dialog.plan.refused_over_network
        text = screen_text(app)  # wrapped in the dialog's box
        assert "xcp-lab-1, xcp-lab-2: the host's interface eth1 on network 'VM network' has no IP" in text
        assert "A host cannot receive them over the" in text and "network chosen: choose another network above." in text
        assert not dialog.query_one("#bd-start").display

        await choose_network(pilot, dialog, "default: the host's management network")
        await planned_over(pilot, dialog, None)
        assert dialog.plan.ok and dialog.query_one("#bd-start").display
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is app.main_screen, "the dialog to close")
    sim = fastlab.sim
    assert sim.db.field("host", sim.host_ref("xcp-lab-3"), "enabled") is True
    (server,) = sim._servers
    made = server.stats.snapshot()
    assert not made.get("Async.VM.migrate_send") and not made.get("Async.VM.pool_migrate")
    assert not (state_dir / "migrations.jsonl").exists()


async def test_no_network_list_where_the_backend_cannot_choose_it(fastlab, monkeypatch):
    monkeypatch.setattr(XenBackend, "MIGRATION_NETWORK", False)
    app = create_app([fastlab.pool()])
    async with app.run_test(size=(120, 45)) as pilot:
        await loaded(pilot)
        dialog = await open_evacuation(pilot, "xcp-lab-3")
        assert not dialog.query("#bd-network") and dialog.network_choice is None
        assert "management network" not in screen_text(app)
        assert dialog.plan.ok and dialog.query_one("#bd-start").display
        await pilot.press("escape")
