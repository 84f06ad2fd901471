"""The migration network from the migrate dialog, keyboard only: a list of the destination pool's
networks, the management network by default; a pick re-checks the hosts over it, so a host
without an address on it says so in its line and nothing starts, and a move over a network the
host has an address on goes by host.migrate_receive on it and VM.migrate_send.

The real app and Xen backend against the XAPI simulator. web-01 runs on xcp-lab-1 with its disk
on the shared SR; the lab's "VM network" (eth1) has no address on any host until a test gives
xcp-lab-2's interface one (PIF.reconfigure_ip); xcp-lab-3 has no room for web-01.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace

import pytest
from textual.widgets import Select

from poolctl.tui.app import create_app
from poolctl.tui.screens.migrate import MigrateDialog
from tests.cli.test_migrate_cross_pool import pools  # noqa: F401  (the fixture: lab and dr served)
from tests.support.jsonrpc import JsonRpc
from tests.support.tui import Lab, choose_option, loaded, screen_text, served_lab, wait_for
from tests.tui.test_migrate_cross_pool import highlight, key_of, two_pools
from tests.tui.test_migration_ui import open_dialog, plain, resident, select_vm, until_finished

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("state_dir")]

MGMT = "Pool-wide network associated with eth0"


@pytest.fixture
def lab() -> Iterator[Lab]:
    yield from served_lab(migration_seconds=1.0)


def net_ref(lab: Lab, name: str) -> str:
    (ref,) = lab.sim.db.find("network", lambda r: r["name_label"] == name)
    return ref


def give_address(lab: Lab, network: str, host: str, ip: str) -> None:
    """An address on ``host``'s interface on ``network``, as an admin sets one up (XenAPI)."""
    net, host_ref = net_ref(lab, network), lab.sim.host_ref(host)
    (pif,) = lab.sim.db.find("PIF", lambda r: r["network"] == net and r["host"] == host_ref)
    JsonRpc(lab.url, "root", "demo").api("PIF.reconfigure_ip", pif, "Static", ip, "255.0.0.0", "", "")


def calls(lab: Lab) -> dict[str, int]:
    (server,) = lab.sim._servers
    return dict(server.stats.snapshot())


def host_ref(dialog: MigrateDialog, name: str) -> str:
    return next(h.ref for h in dialog.hosts if h.name == name)


def prompt(dialog: MigrateDialog, host: str) -> str:
    return plain(dialog.query_one("#migrate-hosts").get_option(host).prompt)


async def choose_network(pilot, dialog: MigrateDialog, name: str) -> None:
    await choose_option(pilot, dialog, "migrate-network", name, key="tab", presses=4)


async def checked_over(pilot, dialog: MigrateDialog, host: str, network: str | None) -> None:
    await wait_for(
        pilot,
        lambda: host in dialog.checked and dialog.checked[host].network == network and host not in dialog.pending,
        f"the pre-check of {host} over {network}",
    )


async def test_a_network_the_destination_has_an_address_on_carries_the_move(lab, state_dir):
    give_address(lab, "VM network", "xcp-lab-2", "127.0.2.2")
    app = create_app([lab.pool()])
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        dialog = await open_dialog(pilot, "web-01")
        two, three, vm_net = host_ref(dialog, "xcp-lab-2"), host_ref(dialog, "xcp-lab-3"), net_ref(lab, "VM network")
        select = dialog.query_one("#migrate-network", Select)
        assert select.value == "" and dialog.checked[two].network is None  # the management network
        assert "network default: the host's management network" in screen_text(app)
        assert "Enter migrate (on a disk or network: choose) · Tab next field · Esc close" in screen_text(app)

        await choose_network(pilot, dialog, "VM network")
        await checked_over(pilot, dialog, two, vm_net)
        await checked_over(pilot, dialog, three, vm_net)  # every host of the pool: the list stays true
        assert select.value == vm_net and "✓ usable" in prompt(dialog, two)
        assert "not enough free memory on xcp-lab-3" in prompt(dialog, three)
        assert dialog.host_list.highlighted_option.id == two

        await pilot.press("shift+tab", "shift+tab")  # back on the host list
        assert dialog.focused is dialog.host_list
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(app.migrations.panels()) == 1, "a migration panel")
        panel = app.migrations.panels()[0]
        assert panel.controller.plan.options.network == vm_net
        await until_finished(pilot, panel)
        assert "web-01 now runs on xcp-lab-2" in "\n".join(panel.info.lines)
    assert resident(lab, "web-01") == two
    made = calls(lab)
    # over a chosen network XAPI's move is migrate_send with host.migrate_receive's map on it
    assert made.get("Async.VM.migrate_send") == 1 and not made.get("Async.VM.pool_migrate")
    (rec,) = [json.loads(line) for line in (state_dir / "migrations.jsonl").read_text().splitlines()]
    assert rec["result"] == "success" and rec["options"]["network"] == vm_net


async def test_a_network_without_an_address_is_refused_in_the_hosts_line_and_nothing_starts(lab, state_dir):
    app = create_app([lab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        dialog = await open_dialog(pilot, "web-01")
        two, vm_net = host_ref(dialog, "xcp-lab-2"), net_ref(lab, "VM network")
        await choose_network(pilot, dialog, "VM network")
        await checked_over(pilot, dialog, two, vm_net)
        why = (
            "✗ xcp-lab-2's interface eth1 on network 'VM network' has no IP address (ip_configuration_mode None): "
            "a migration cannot be received over it"
        )
        assert why in prompt(dialog, two)
        # another network cures it: the host stays highlighted and choosable, its reason in view
        assert dialog.host_list.highlighted_option.id == two
        assert not dialog.host_list.get_option(two).disabled
        await pilot.press("shift+tab", "shift+tab", "enter")
        assert isinstance(app.screen, MigrateDialog) and not app.migrations.panels()
        assert "The host cannot take it over that network: choose another (see above)." in screen_text(app)

        await choose_network(pilot, dialog, "default: the host's management network")
        await checked_over(pilot, dialog, two, None)
        assert "✓ usable" in prompt(dialog, two)
        await pilot.press("escape")
    assert resident(lab, "web-01") == lab.sim.host_ref("xcp-lab-1")
    made = calls(lab)
    assert not made.get("Async.VM.migrate_send") and not made.get("Async.VM.pool_migrate")
    assert not (state_dir / "migrations.jsonl").exists()


async def test_the_networks_are_named_safely_and_hidden_without_the_capability(lab):
    rpc = JsonRpc(lab.url, "root", "demo")
    rpc.api("network.set_name_label", net_ref(lab, "VM network"), "[bold]VM\x1b[2J\u202enet")
    app = create_app([lab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        dialog = await open_dialog(pilot, "web-01")
        select = dialog.query_one("#migrate-network", Select)
        await pilot.press("tab", "tab", "enter")  # past the disk's row to the network list, opened
        await wait_for(pilot, lambda: select.expanded, "the network list")
        text = screen_text(app)
        assert MGMT in text and "[bold]VM\\x1b[2J<U+202E>net" in text  # markup shown as typed, not obeyed
        assert not any(c in text for c in ("\x1b", "\u202e"))
        assert "Host internal management network" not in text  # no interface: no move goes over it
        await pilot.press("escape")  # closes the list
        await choose_network(pilot, dialog, MGMT)
        await checked_over(pilot, dialog, host_ref(dialog, "xcp-lab-2"), net_ref(lab, MGMT))
        assert select.value == net_ref(lab, MGMT) and "✓ usable" in prompt(dialog, host_ref(dialog, "xcp-lab-2"))
        await pilot.press("escape")

        # a backend that cannot choose the network (KVM's) gets no list, and moves as it always did
        await select_vm(pilot, "web-01")
        session = app.sessions["lab"]
        vm = app.main_screen.vm_list.cursor_vm
        hosts = sorted((h for h in session.store.hosts.values() if h.ref != vm.host), key=lambda h: h.name)
        caps = replace(session.backend.capabilities, migration_network=False)
        networks = list(session.store.networks.values())
        plain_dialog = MigrateDialog("lab", session.backend, vm, hosts, "xcp-lab-1", caps, networks=networks)
        app.push_screen(plain_dialog)
        await wait_for(pilot, lambda: len(plain_dialog.checks) == 2, "the pre-checks")
        assert not plain_dialog.query("#migrate-network") and plain_dialog.network is None
        assert "Enter migrate (on a disk: choose its SR) · Tab next field · Esc close" in screen_text(app)


async def test_a_host_of_another_pool_offers_that_pools_networks(pools, state_dir):  # noqa: F811
    lab, dr, _ = pools
    app = create_app(two_pools(pools))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot, "lab")
        await loaded(pilot, "dr")
        dialog = await open_dialog(pilot, "cache-01")
        there, here = key_of(dialog, "dr/xcp-dr-2"), key_of(dialog, "xcp-lab-2")
        await highlight(pilot, dialog, there)
        await wait_for(pilot, lambda: dialog.network.pool == "dr", "dr's networks in the list")
        await choose_network(pilot, dialog, "Migration network")  # dr's: lab has none of that name
        (migration_net,) = dr.db.find("network", lambda r: r["name_label"] == "Migration network")
        await checked_over(pilot, dialog, there, migration_net)
        assert "xcp-dr-2's interface eth2 on network 'dr/Migration network' has no IP address" in prompt(dialog, there)
        assert dialog.checked[here].network is None  # the pick is dr's: lab's hosts keep their default
        await highlight(pilot, dialog, here)
        await wait_for(pilot, lambda: dialog.query_one("#migrate-network", Select).value == "", "lab's default")
        await pilot.press("escape")
    assert lab.db.field("VM", lab.vm_ref("cache-01"), "resident_on") == lab.host_ref("xcp-lab-1")
