"""The staged load every backend promises: ``first_inventory()`` and then ``watch()`` add up to
``inventory()``, run against each backend's real target (see conftest)."""

from __future__ import annotations

import time

import pytest

from poolctl.inventory import InventoryStore
from poolctl.model import ConnectionStatus
from tests.support.recorder import Recorder

pytestmark = pytest.mark.timeout(60)

CONNECTED_WAIT_S = 15.0


class UntilConnected(Recorder):
    """Also keeps what had been delivered when the first CONNECTED state came."""

    def __init__(self):
        super().__init__()
        self.before_connected: list | None = None

    def on_state(self, state):
        if state.status == ConnectionStatus.CONNECTED and self.before_connected is None:
            self.before_connected = list(self.seen)
        super().on_state(state)


def _wait_connected(rec: UntilConnected) -> list:
    deadline = time.monotonic() + CONNECTED_WAIT_S
    while time.monotonic() < deadline:
        if rec.before_connected is not None:
            return rec.before_connected
        time.sleep(0.02)
    raise AssertionError(f"no CONNECTED state within {CONNECTED_WAIT_S} s; saw {[s.status for s in rec.states]}")


def test_first_inventory_plus_watch_adds_up_to_inventory(target):
    backend = target.backend
    first = backend.first_inventory()
    store = InventoryStore(first)
    rec = UntilConnected()
    backend.watch(rec.on_change, rec.on_state)
    # "once CONNECTED": what was delivered up to that point, nothing later
    for change in _wait_connected(rec):
        store.apply(change)
    full = backend.inventory()
    assert {v.ref: v for v in full.vms} == store.vms
    assert all(v.devices_known for v in store.vms.values())
    assert store.devices_pending is False
    # the first read already had every VM and the rest of the pool
    assert {v.ref for v in first.vms} == {v.ref for v in full.vms}
    assert (first.pool, set(first.hosts), set(first.srs), set(first.networks)) == (
        full.pool,
        set(full.hosts),
        set(full.srs),
        set(full.networks),
    )


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
            assert (
                vm.model_copy(
                    update={"devices_known": True, "disks": by_ref[vm.ref].disks, "nics": by_ref[vm.ref].nics}
                )
                == by_ref[vm.ref]
            )
    if backend.NAME == "kvm":
        assert first == full  # the default: the full inventory()
        assert InventoryStore(first).devices_pending is False
