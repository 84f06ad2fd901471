"""What every backend promises, run against each backend's real target (see conftest)."""

from __future__ import annotations

from dataclasses import fields

import pytest

from poolctl.backends.base import BackendError, OperationRefused, Unsupported
from poolctl.model import (
    VM,
    MigrationCheck,
    MigrationOptions,
    MigrationPhase,
    PowerOp,
    PowerState,
)
from tests.support.recorder import Recorder


def _vm(target, ref: str) -> VM:
    return next(v for v in target.backend.inventory().vms if v.ref == ref)


def test_inventory_shape(target):
    inv = target.backend.inventory()
    assert inv.hosts and inv.vms and inv.srs
    host_refs = {h.ref for h in inv.hosts}
    for table in (inv.hosts, inv.srs, inv.networks, inv.vms):
        refs = [o.ref for o in table]
        assert len(refs) == len(set(refs)), "refs must be unique"
    assert inv.pool.name and inv.pool.backend == target.backend.NAME
    for vm in inv.vms:
        assert vm.host is None or vm.host in host_refs, f"{vm.name} is on unknown host {vm.host}"
        if vm.power_state == PowerState.RUNNING:
            assert vm.host in host_refs, f"running VM {vm.name} has no host"
    for sr in inv.srs:
        assert set(sr.hosts) <= host_refs
    states = {v.ref: v.power_state for v in inv.vms}
    assert states[target.running_vm] == PowerState.RUNNING
    assert states[target.halted_vm] == PowerState.HALTED


def test_power_cycle_of_halted_vm_shows_through_watch(target):
    rec = Recorder()
    target.backend.watch(rec.on_change, rec.on_state)
    target.backend.power(target.halted_vm, PowerOp.START)
    running = rec.wait_vm(target.halted_vm, lambda v: v.power_state == PowerState.RUNNING)
    assert running.host is not None
    target.backend.power(target.halted_vm, PowerOp.SHUTDOWN)
    halted = rec.wait_vm(target.halted_vm, lambda v: v.power_state == PowerState.HALTED)
    assert halted.host is None
    assert _vm(target, target.halted_vm).power_state == PowerState.HALTED


def test_bad_power_op_is_refused_in_words(target):
    name = _vm(target, target.halted_vm).name
    with pytest.raises(OperationRefused) as err:
        target.backend.power(target.halted_vm, PowerOp.SHUTDOWN)
    assert name in str(err.value)
    assert _vm(target, target.halted_vm).power_state == PowerState.HALTED


def test_unknown_vm_is_not_found(target):
    bogus = "OpaqueRef:00000000-dead-beef-0000-000000000000" if target.backend.NAME == "xen" else "no-such-vm"
    with pytest.raises(BackendError) as err:
        target.backend.power(bogus, PowerOp.START)
    assert str(err.value)
    with pytest.raises(BackendError):
        target.backend.check_migration(bogus, target.backend.inventory().hosts[0].ref)


def test_check_migration_answers_for_every_host(target):
    inv = target.backend.inventory()
    vm = next(v for v in inv.vms if v.ref == target.running_vm)
    for host in inv.hosts:
        check = target.backend.check_migration(vm.ref, host.ref)
        assert isinstance(check, MigrationCheck)
        assert (check.vm, check.host) == (vm.ref, host.ref)
        assert all(isinstance(p, str) and p for p in check.problems)
        if host.ref == vm.host:
            assert not check.ok, "moving a VM to where it already runs must be refused"
    if target.can_migrate:
        assert target.backend.check_migration(vm.ref, target.good_destination).ok


def test_migration(target):
    backend = target.backend
    if not target.can_migrate:
        assert backend.capabilities.live_migration is False
        assert backend.capabilities.reason
        with pytest.raises(Unsupported):
            backend.migrate(target.running_vm, backend.inventory().hosts[0].ref, MigrationOptions())
        return
    rec = Recorder()
    backend.watch(rec.on_change, rec.on_state)
    source = _vm(target, target.running_vm).host
    handle = backend.migrate(target.running_vm, target.good_destination, MigrationOptions())
    assert (handle.vm, handle.source, handle.destination) == (target.running_vm, source, target.good_destination)
    assert handle.result is None
    updates = list(handle.updates())
    assert updates and updates[-1].phase == MigrationPhase.DONE
    assert all(not u.phase.terminal for u in updates[:-1])
    fractions = [u.fraction for u in updates if u.fraction is not None]
    assert fractions == sorted(fractions)
    result = handle.result
    assert result is not None and result.outcome == "success"
    assert result.host == target.good_destination and result.duration_s > 0
    rec.wait_vm(target.running_vm, lambda v: v.host == target.good_destination)
    assert _vm(target, target.running_vm).host == target.good_destination


def test_close_twice_is_safe(target):
    target.backend.close()
    target.backend.close()
    with pytest.raises(BackendError):
        target.backend.inventory()


def test_capability_flags_are_consistent(target):
    backend = target.backend
    caps = backend.capabilities
    assert caps.live_migration == (backend.SUPPORTS_LIVE_MIGRATION and target.can_migrate)
    assert caps.live_migration or caps.reason
    if not backend.SUPPORTS_LIVE_MIGRATION:
        assert not caps.cancel
    assert caps.cancel <= backend.IMPLEMENTS_CANCEL
    assert caps.downtime_reporting <= backend.REPORTS_DOWNTIME
    assert caps.migration_options <= set(MigrationOptions.model_fields) - {"live"}
    assert caps.migration_options <= backend.MIGRATION_OPTIONS
    assert {f.name for f in fields(caps)} >= {"live_migration", "cancel", "downtime_reporting"}
