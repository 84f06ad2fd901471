"""The staged load every backend promises: ``first_inventory()`` and then ``watch()`` add up to
``inventory()``, run against each backend's real target (see conftest)."""

from __future__ import annotations

import time

import pytest

from poolctl.inventory import InventoryStore
from poolctl.model import ConnectionStatus
from tests.contract.test_contract import Recorder

pytestmark = pytest.mark.timeout(60)

CONNECTED_WAIT_S = 15.0


def _wait_connected(rec: Recorder) -> None:
    deadline = time.monotonic() + CONNECTED_WAIT_S
    while time.monotonic() < deadline:
        if any(s.status == ConnectionStatus.CONNECTED for s in rec.states):
            return
        time.sleep(0.02)
    raise AssertionError(f"no CONNECTED state within {CONNECTED_WAIT_S} s; saw {[s.status for s in rec.states]}")


def test_first_inventory_plus_watch_adds_up_to_inventory(target):
    backend = target.backend
    first = backend.first_inventory()
    store = InventoryStore(first)
    rec = Recorder()
    backend.watch(rec.on_change, rec.on_state)
    _wait_connected(rec)
    # "once CONNECTED": what was delivered up to that point, nothing later
    for change in list(rec.seen):
        store.apply(change)
    full = backend.inventory()
    assert {v.ref: v for v in full.vms} == store.vms
    assert all(v.devices_known for v in store.vms.values())
    assert store.devices_pending is False
    # the first read already had every VM and the rest of the pool
    assert {v.ref for v in first.vms} == {v.ref for v in full.vms}
    assert (first.pool, set(first.hosts), set(first.srs), set(first.networks)) == (
        full.pool, set(full.hosts), set(full.srs), set(full.networks))


def test_first_inventory_is_as_complete_as_promised(target):
    """A backend either gives everything at once or says which VMs' devices it left out."""
    backend = target.backend
    first = backend.first_inventory()
    full = backend.inventory()
    by_ref = {v.ref: v for v in full.vms}
    for vm in first.vms:
        if vm.devices_known:
            assert vm == by_ref[vm.ref]
        else:
            assert (vm.disks, vm.nics) == ((), ()), f"{vm.name}: devices not known, yet some are given"
            # everything but the devices is already there
            assert vm.model_copy(update={"devices_known": True, "disks": by_ref[vm.ref].disks,
                                         "nics": by_ref[vm.ref].nics}) == by_ref[vm.ref]
    if backend.NAME == "kvm":
        assert first == full  # the default: the full inventory()
        assert InventoryStore(first).devices_pending is False
