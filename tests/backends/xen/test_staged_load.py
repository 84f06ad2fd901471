"""The Xen backend's staged load against the simulator (real SDK, real HTTP): ``first_inventory()``
leaves VBDs, VDIs and VIFs out; ``watch()`` reads them first thing, delivers the VMs with their
devices, and only then reports CONNECTED and follows events from the first read's token."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import XenAPI

from poolctl.backends.xen.translate import CLASSES
from poolctl.inventory import InventoryStore
from poolctl.loading import close_quietly, load_pool
from poolctl.model import ConnectionStatus, PowerState
from poolctl.sim.xapi import Simulator
from tests.support.recorder import Recorder
from tests.support.xen import PASSWORD, USERNAME, by_name, config, connected, lab, wait_state

pytestmark = pytest.mark.timeout(60)

DEVICE_CALLS = {"VBD.get_all_records", "VDI.get_all_records", "VIF.get_all_records"}
BULK_CALLS = {f"{api}.get_all_records" for api in CLASSES.values()}
LAB_VMS = 12


class Timeline(Recorder):
    """A Recorder that also keeps changes and states in one sequence, as delivered."""

    def __init__(self):
        super().__init__()
        self.timeline: list[tuple[str, object]] = []

    def on_change(self, change):
        self.timeline.append(("change", change))
        super().on_change(change)

    def on_state(self, state):
        self.timeline.append(("state", state))
        super().on_state(state)


def _watch(backend) -> Timeline:
    rec = Timeline()
    backend.watch(rec.on_change, rec.on_state)
    wait_state(rec, ConnectionStatus.CONNECTED)
    return rec


def _bulk_reads(calls) -> dict[str, int]:
    return {name: n for name, n in calls.items() if name in BULK_CALLS}


def _store_after(first, rec: Recorder) -> InventoryStore:
    store = InventoryStore(first)
    for change in list(rec.seen):
        store.apply(change)
    return store


@contextmanager
def _other_client(url: str) -> Iterator[object]:
    other = XenAPI.Session(url)
    other.login_with_password(USERNAME, PASSWORD, "2.x", "another-client")
    try:
        yield other.xenapi
    finally:
        other.xenapi.session.logout()


def test_first_inventory_leaves_out_only_the_vms_devices():
    with lab() as (_sim, server), connected(server.url) as backend:
        first = backend.first_inventory()
        full = backend.inventory()
    assert len(first.vms) == LAB_VMS
    assert all(v.devices_known is False and v.disks == () and v.nics == () for v in first.vms)
    assert all(v.devices_known is True and v.disks and v.nics for v in full.vms)
    assert first.pool == full.pool
    assert first.hosts == full.hosts and first.srs == full.srs and first.networks == full.networks
    full_vms = {v.ref: v for v in full.vms}
    for vm in first.vms:
        rest = full_vms[vm.ref]
        assert vm.model_dump(exclude={"disks", "nics", "devices_known"}) == rest.model_dump(
            exclude={"disks", "nics", "devices_known"}
        ), vm.name


def test_devices_are_read_once_and_only_when_watch_runs():
    with lab() as (_sim, server), connected(server.url) as backend:
        server.stats.reset()
        first = backend.first_inventory()
        staged = _bulk_reads(server.stats.snapshot())
        assert not DEVICE_CALLS & set(staged), staged
        assert set(staged) == BULK_CALLS - DEVICE_CALLS and all(n == 1 for n in staged.values()), staged

        server.stats.reset()
        rec = _watch(backend)
        rest = _bulk_reads(server.stats.snapshot())
        # exactly the device classes, once each: not the whole pool again
        assert rest == dict.fromkeys(DEVICE_CALLS, 1), rest
        assert _store_after(first, rec).vms == {v.ref: v for v in backend.inventory().vms}


def test_vms_with_devices_arrive_before_connected():
    with lab() as (_sim, server), connected(server.url) as backend:
        first = backend.first_inventory()
        rec = _watch(backend)
        full = {v.ref: v for v in backend.inventory().vms}
    kinds = [kind for kind, _ in rec.timeline]
    connected_at = next(
        i
        for i, (kind, item) in enumerate(rec.timeline)
        if kind == "state" and item.status == ConnectionStatus.CONNECTED
    )
    before = [item for kind, item in rec.timeline[:connected_at] if kind == "change"]
    assert {c.ref for c in before} == {v.ref for v in first.vms}, kinds
    assert all(c.kind == "modified" and c.object_kind == "vm" for c in before)
    assert all(c.obj.devices_known and c.obj == full[c.ref] for c in before)
    # nothing else was left to deliver: the pool did not change
    assert not [item for kind, item in rec.timeline[connected_at:] if kind == "change"]


def test_a_change_between_first_inventory_and_watch_still_arrives():
    with lab() as (_sim, server), connected(server.url) as backend:
        first = backend.first_inventory()
        web2 = by_name(first, "vm", "web-02")
        assert next(v for v in first.vms if v.ref == web2).power_state == PowerState.RUNNING
        with _other_client(server.url) as x:
            x.VM.hard_shutdown(web2)  # after the first read's token, before the event loop starts
        rec = _watch(backend)
        halted = rec.wait_vm(web2, lambda v: v.power_state == PowerState.HALTED, timeout=10.0)
        assert halted.host is None and halted.devices_known and halted.disks
        store = _store_after(first, rec)
        full = backend.inventory()
    assert store.vms[web2].power_state == PowerState.HALTED
    assert store.vms == {v.ref: v for v in full.vms}
    assert store.devices_pending is False


def test_full_inventory_and_ls_still_read_the_devices():
    with lab() as (_sim, server):
        with connected(server.url) as backend:
            backend.first_inventory()  # a staged read before does not change what inventory() is
            full = backend.inventory()
        ls_backend, listed = load_pool(config(server.url), full=True)  # what `poolctl ls` prints
        close_quietly(ls_backend)
    for inv in (full, listed):
        assert len(inv.vms) == LAB_VMS
        assert all(v.devices_known and v.disks and v.nics for v in inv.vms)
        db01 = next(v for v in inv.vms if v.name == "db-01")
        iscsi = by_name(inv, "sr", "iSCSI storage")
        assert [d.name for d in db01.disks if d.name == "db-01 data"] == ["db-01 data"]
        assert all(d.sr == iscsi for d in db01.disks if not d.cdrom)


def test_staged_load_completes_over_xmlrpc_without_jsonrpc():
    sim = Simulator.from_scenario("lab", password=PASSWORD, migration_seconds=1.0, jsonrpc=False)
    with sim.serve(host="127.0.0.1", port=0) as server, connected(server.url) as backend:
        first = backend.first_inventory()
        assert backend.connector.jsonrpc is False
        assert all(not v.devices_known for v in first.vms)
        server.stats.reset()
        rec = _watch(backend)
        assert _bulk_reads(server.stats.snapshot()) == dict.fromkeys(DEVICE_CALLS, 1)
        store = _store_after(first, rec)
        full = backend.inventory()
    assert len(store.vms) == LAB_VMS and store.devices_pending is False
    assert store.vms == {v.ref: v for v in full.vms}
    assert sim.db.json_cache == {}  # nothing went over JSON-RPC
