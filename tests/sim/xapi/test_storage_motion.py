"""Storage motion on the simulator through the real XenAPI SDK: host.migrate_receive's map,
VM.assert_can_migrate's errors for bad maps, Async.VM.migrate_send's two phases, its cancel,
and VDI.pool_migrate."""

from __future__ import annotations

import time

import pytest
import XenAPI

GIB = 1024**3


def _by_name(api, cls, name):
    (ref,) = getattr(api, cls).get_by_name_label(name)
    return ref


def _disk(api, vm):
    (vbd,) = [b for b in api.VM.get_VBDs(vm) if api.VBD.get_type(b) == "Disk"]
    return vbd, api.VBD.get_VDI(vbd)


def _mgmt_network(api):
    return _by_name(api, "network", "Pool-wide network associated with eth0")


def _wait(api, task, timeout=30.0):
    deadline = time.monotonic() + timeout
    while api.task.get_status(task) == "pending":
        assert time.monotonic() < deadline, "task did not end"
        time.sleep(0.05)
    return api.task.get_record(task)


def _failure(call, *args):
    with pytest.raises(XenAPI.Failure) as info:
        call(*args)
    return info.value.details


def test_migrate_receive_returns_xapis_map(sim, api):
    host = _by_name(api, "host", "xcp-lab-2")
    dest = api.host.migrate_receive(host, _mgmt_network(api), {})
    assert sorted(dest) == ["SM", "host", "master", "session_id", "xenops"]
    assert dest["host"] == host
    # xapi's are on port 80; the simulator's carry the port it is served on
    address = f"{api.host.get_address(host)}:{sim.served[1]}"
    assert dest["SM"] == f"http://{address}/services/SM?session_id={dest['session_id']}"
    assert dest["xenops"] == f"http://{address}/services/xenops?session_id={dest['session_id']}"
    master = api.host.get_address(api.pool.get_master(api.pool.get_all()[0]))
    assert dest["master"] == f"http://{master}:{sim.served[1]}/"


def test_migrate_receive_without_a_pif_on_the_network(api):
    host = _by_name(api, "host", "xcp-lab-2")
    net = api.network.create({"name_label": "internal", "name_description": "", "MTU": "1500", "other_config": {}})
    assert _failure(api.host.migrate_receive, host, net, {}) == ["HOST_CANNOT_ATTACH_NETWORK", host, net]


def test_bad_maps_get_xapis_errors(sim, api):
    vm = _by_name(api, "VM", "cache-01")  # its disk is on xcp-lab-1's local SR
    _, vdi = _disk(api, vm)
    dest = api.host.migrate_receive(_by_name(api, "host", "xcp-lab-2"), _mgmt_network(api), {})
    shared = _by_name(api, "SR", "iSCSI storage")
    assert _failure(api.VM.assert_can_migrate, vm, dest, True, {}, {}, {}, {}) == ["VDI_NOT_IN_MAP", vdi]
    vif = api.VM.get_VIFs(vm)[0]
    net = api.VIF.get_network(vif)
    details = _failure(api.VM.assert_can_migrate, vm, dest, True, {vdi: shared}, {vif: net}, {}, {})
    assert details[0] == "OPERATION_NOT_ALLOWED"
    api.VM.assert_can_migrate(vm, dest, True, {vdi: shared}, {}, {}, {})  # a good map passes
    # an SR the destination cannot see: xapi's storage layer says SR_NOT_ATTACHED when the mirror starts
    other_local = _by_name(api, "SR", "Local storage xcp-lab-3")
    task = api.Async.VM.migrate_send(vm, dest, True, {vdi: other_local}, {}, {}, {})
    rec = _wait(api, task)
    assert rec["status"] == "failure"
    assert rec["error_info"] == ["SR_NOT_ATTACHED", api.SR.get_uuid(other_local)]
    # not enough space on the destination SR: the mirror's VDI.create fails
    api.SR.set_physical_size(shared, str(int(api.SR.get_physical_utilisation(shared)) + GIB))
    task = api.Async.VM.migrate_send(vm, dest, True, {vdi: shared}, {}, {}, {})
    rec = _wait(api, task)
    assert rec["error_info"][0] == "SR_FULL"
    assert api.VM.get_resident_on(vm) == _by_name(api, "host", "xcp-lab-1")
    assert api.VBD.get_VDI(_disk(api, vm)[0]) == vdi


def test_migrate_send_moves_disks_then_memory(lab_factory):
    sim, _server, api = lab_factory(migration_seconds=0.5, storage_mib_s=30 * 1024 / 1.5)  # 30 GiB in 1.5 s
    vm = _by_name(api, "VM", "cache-01")
    vbd, old = _disk(api, vm)
    size = int(api.VDI.get_virtual_size(old))
    dest_host = _by_name(api, "host", "xcp-lab-2")
    shared = _by_name(api, "SR", "iSCSI storage")
    used_before = int(api.SR.get_physical_utilisation(shared))
    dest = api.host.migrate_receive(dest_host, _mgmt_network(api), {})
    started = time.monotonic()
    task = api.Async.VM.migrate_send(vm, dest, True, {old: shared}, {}, {}, {})
    seen = []
    while api.task.get_status(task) == "pending":
        seen.append((float(api.task.get_progress(task)), api.VM.get_resident_on(vm)))
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    rec = api.task.get_record(task)
    assert rec["status"] == "success", rec["error_info"]
    assert vm in rec["result"]  # migrate_send returns the VM
    assert 1.8 <= elapsed < 5.0  # 1.5 s of disk, then 0.5 s of memory
    # three quarters of the time is the disk: the VM was still on its source at 60 %
    assert any(0.5 < p < 0.7 and where == _by_name(api, "host", "xcp-lab-1") for p, where in seen)
    assert api.VM.get_resident_on(vm) == dest_host
    new = api.VBD.get_VDI(vbd)
    assert new != old and api.VDI.get_SR(new) == shared and int(api.VDI.get_virtual_size(new)) == size
    assert api.VDI.get_VBDs(new) == [vbd]
    with pytest.raises(XenAPI.Failure) as gone:
        api.VDI.get_record(old)
    assert gone.value.details[:2] == ["HANDLE_INVALID", "VDI"]
    assert int(api.SR.get_physical_utilisation(shared)) == used_before + size
    assert api.VM.get_current_operations(vm) == {}


def test_cancel_in_the_disk_phase_leaves_the_vm_and_its_disks(lab_factory):
    sim, _server, api = lab_factory(migration_seconds=0.5, storage_mib_s=30 * 1024 / 4.0)
    vm = _by_name(api, "VM", "cache-01")
    vbd, old = _disk(api, vm)
    source = api.VM.get_resident_on(vm)
    shared = _by_name(api, "SR", "iSCSI storage")
    vdis_before = set(api.SR.get_VDIs(shared))
    dest = api.host.migrate_receive(_by_name(api, "host", "xcp-lab-2"), _mgmt_network(api), {})
    task = api.Async.VM.migrate_send(vm, dest, True, {old: shared}, {}, {}, {})
    time.sleep(0.8)
    assert "cancel" in api.task.get_allowed_operations(task)
    api.task.cancel(task)
    rec = _wait(api, task)
    assert rec["status"] == "cancelled"
    assert api.VM.get_resident_on(vm) == source
    assert api.VBD.get_VDI(vbd) == old and api.VDI.get_SR(old) != shared
    assert set(api.SR.get_VDIs(shared)) == vdis_before  # the half-made mirror is gone


def test_vdi_pool_migrate_moves_one_disk_of_a_running_vm(lab_factory):
    sim, _server, api = lab_factory(migration_seconds=0.2, storage_mib_s=1024 * 1024)
    vm = _by_name(api, "VM", "db-01")
    host = api.VM.get_resident_on(vm)
    vbds = [b for b in api.VM.get_VBDs(vm) if api.VBD.get_type(b) == "Disk"]
    data = next(b for b in vbds if api.VDI.get_name_label(api.VBD.get_VDI(b)) == "db-01 data")
    other = next(b for b in vbds if b != data)
    other_vdi = api.VBD.get_VDI(other)
    local = _by_name(api, "SR", "Local storage xcp-lab-1")
    new = api.VDI.pool_migrate(api.VBD.get_VDI(data), local, {})
    assert api.VBD.get_VDI(data) == new and api.VDI.get_SR(new) == local
    assert api.VBD.get_VDI(other) == other_vdi  # the other disk stayed where it was
    assert api.VM.get_resident_on(vm) == host
    assert api.VM.get_power_state(vm) == "Running"
