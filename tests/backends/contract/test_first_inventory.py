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
    # the first read already had every VM and host and the rest of the pool; a host's figures
    # that depend on its VMs (free memory where libvirt's test driver reports none) came with them
    assert {v.ref for v in first.vms} == {v.ref for v in full.vms}
    assert {h.ref for h in first.hosts} == {h.ref for h in full.hosts}
    assert store.hosts == {h.ref: h for h in full.hosts}
    assert (first.pool, set(first.srs), set(first.networks)) == (full.pool, set(full.srs), set(full.networks))


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
            # the rest is as the full read has it, or not known yet either (left at its default:
            # the KVM backend's bulk calls cannot give a domain's title or guest addresses)
            whole = by_ref[vm.ref]
            for name, spec in type(vm).model_fields.items():
                if name not in ("disks", "nics", "devices_known"):
                    given, known = getattr(vm, name), getattr(whole, name)
                    assert given in (known, spec.get_default(call_default_factory=True)), (
                        f"{vm.name}: {name} is {given!r} before its devices are read, {known!r} after"
                    )
