"""Cross-pool storage motion between two simulators over their real interfaces: the `dr` pool's
host.migrate_receive gives the map, the `lab` pool's VM.assert_can_migrate and
Async.VM.migrate_send carry the VM over (XML-RPC calls and HTTP PUTs to the destination), and
afterwards the VM is the destination's, gone from the source; failures and cancels leave it
running on the source with nothing left behind on the destination."""

from __future__ import annotations

import time
import xmlrpc.client

import pytest
import XenAPI

from poolctl.sim.xapi import Simulator

from .conftest import PASSWORD


@pytest.fixture
def pools():
    src = Simulator.from_scenario("lab", password=PASSWORD, migration_seconds=0.6, storage_mib_s=30 * 1024)
    dst = Simulator.from_scenario("dr", password=PASSWORD, migration_seconds=0.6)
    servers = [src.serve("127.0.0.1", 0), dst.serve("127.0.0.1", 0)]
    apis = []
    for server in servers:
        s = XenAPI.Session(server.url)
        s.login_with_password("root", PASSWORD, "2.21", "poolctl-tests")
        apis.append(s.xenapi)
    yield src, dst, apis[0], apis[1]
    for server in servers:
        server.close()


def _one(api, cls, name):
    (ref,) = getattr(api, cls).get_by_name_label(name)
    return ref


def _maps(a, b, vm_name, sr_name="NFS storage"):
    vm = _one(a, "VM", vm_name)
    vdis = [a.VBD.get_VDI(v) for v in a.VM.get_VBDs(vm) if a.VBD.get_type(v) == "Disk"]
    sr = _one(b, "SR", sr_name)
    vif_map = {a.VIF.get_network(v): _one(b, "network", "VM network") for v in a.VM.get_VIFs(vm)}
    return vm, {v: sr for v in vdis}, vif_map


def _receive(b, host="xcp-dr-2"):
    net = _one(b, "network", "Pool-wide network associated with eth0")
    return b.host.migrate_receive(_one(b, "host", host), net, {})


def _wait(api, task):
    deadline = time.monotonic() + 30
    while api.task.get_status(task) == "pending":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return api.task.get_record(task)


def test_the_map_names_the_destination_pools_master_and_port(pools):
    _, dst, _, b = pools
    dest = _receive(b)
    assert dest["master"] == f"http://127.0.2.1:{dst.served[1]}/"
    assert dest["xenops"].startswith(f"http://127.0.2.2:{dst.served[1]}/services/xenops?session_id=")


def test_a_cross_pool_move_runs_end_to_end(pools):
    src, dst, a, b = pools
    vm, vdi_map, vif_map = _maps(a, b, "cache-01")  # its 30 GiB disk is on xcp-lab-1's local SR
    uuid = a.VM.get_uuid(vm)
    (old_vdi,) = vdi_map
    token = b.event_from(["VM"], "", 0.0)["token"]
    dest = _receive(b)
    a.VM.assert_can_migrate(vm, dest, True, vdi_map, vif_map, {}, {})
    started = time.monotonic()
    task = a.Async.VM.migrate_send(vm, dest, True, vdi_map, vif_map, {}, {})
    progress = []
    while a.task.get_status(task) == "pending":
        progress.append(float(a.task.get_progress(task)))
        time.sleep(0.05)
    rec = a.task.get_record(task)
    assert rec["status"] == "success", rec["error_info"]
    assert time.monotonic() - started >= 1.5  # 30 GiB at 30 GiB/s, then the memory: 0.6 s
    assert progress == sorted(progress) and 0 < max(progress) < 1
    new = b.VM.get_by_uuid(uuid)
    assert rec["result"] == f"<value>{new}</value>"
    assert b.VM.get_power_state(new) == "Running"
    assert b.VM.get_resident_on(new) == _one(b, "host", "xcp-dr-2")
    (vbd,) = b.VM.get_VBDs(new)
    assert b.SR.get_name_label(b.VDI.get_SR(b.VBD.get_VDI(vbd))) == "NFS storage"
    (vif,) = b.VM.get_VIFs(new)
    assert b.network.get_name_label(b.VIF.get_network(vif)) == "VM network"
    assert b.VM_guest_metrics.get_networks(b.VM.get_guest_metrics(new))["0/ip"] == "127.0.10.31"
    # gone from the source, disk and all
    assert a.VM.get_by_name_label("cache-01") == []
    with pytest.raises(XenAPI.Failure):
        a.VDI.get_uuid(old_vdi)
    events = b.event_from(["VM"], token, 1.0)["events"]
    assert any(e["ref"] == new and e["operation"] == "add" for e in events)


def test_maps_the_destination_refuses_get_xapis_errors(pools):
    src, _, a, b = pools
    vm, vdi_map, vif_map = _maps(a, b, "cache-01")
    dest = _receive(b)
    (vif,) = a.VM.get_VIFs(vm)
    with pytest.raises(XenAPI.Failure) as info:
        a.VM.assert_can_migrate(vm, dest, True, vdi_map, {}, {}, {})
    assert info.value.details == ["VIF_NOT_IN_MAP", vif]
    with pytest.raises(XenAPI.Failure) as info:
        a.VM.assert_can_migrate(vm, dest, True, {}, vif_map, {}, {})
    assert info.value.details[0] == "VDI_NOT_IN_MAP"
    # xcp-dr-1's local SR, which xcp-dr-2 cannot see: the destination's importer says so
    local = _one(b, "SR", "Local storage xcp-dr-1")
    bad = {v: local for v in vdi_map}
    with pytest.raises(XenAPI.Failure) as info:
        a.VM.assert_can_migrate(vm, dest, True, bad, vif_map, {}, {})
    assert info.value.details == ["VM_REQUIRES_SR", vm, local]
    # db-02 needs 16 GiB; xcp-dr-2 has 16 GiB in all
    vm2, vdi_map2, vif_map2 = _maps(a, b, "db-02")
    with pytest.raises(XenAPI.Failure) as info:
        a.VM.assert_can_migrate(vm2, dest, True, vdi_map2, vif_map2, {}, {})
    assert info.value.details[0] == "HOST_NOT_ENOUGH_FREE_MEMORY"
    # a session the destination does not know: its SESSION_INVALID comes back (raw XML-RPC, as
    # the SDK would take it for its own session's and log in again)
    proxy = xmlrpc.client.ServerProxy(f"http://127.0.1.1:{src.served[1]}/")
    session = proxy.session.login_with_password("root", PASSWORD, "2.21", "raw")["Value"]
    reply = proxy.VM.assert_can_migrate(
        session, vm, {**dest, "session_id": "OpaqueRef:nope"}, True, vdi_map, vif_map, {}, {}
    )
    assert reply["ErrorDescription"] == ["SESSION_INVALID", "OpaqueRef:nope"]


def test_a_failed_move_leaves_the_vm_on_the_source_and_nothing_on_the_destination(pools):
    _, _, a, b = pools
    vm, vdi_map, vif_map = _maps(a, b, "cache-01")
    dest = _receive(b)
    sr = _one(b, "SR", "NFS storage")
    vdis_before = set(b.SR.get_VDIs(sr))
    b.host.disable(_one(b, "host", "xcp-dr-2"))
    rec = _wait(a, a.Async.VM.migrate_send(vm, dest, True, vdi_map, vif_map, {}, {}))
    assert rec["error_info"][0] == "HOST_DISABLED"
    assert a.VM.get_power_state(vm) == "Running"
    assert set(b.SR.get_VDIs(sr)) == vdis_before


def test_a_cancel_in_the_disk_phase_cleans_up_the_destination(pools):
    src, _, a, b = pools
    src.storage_mib_s = 10 * 1024  # 3 s of disk copy
    vm, vdi_map, vif_map = _maps(a, b, "cache-01")
    dest = _receive(b)
    sr = _one(b, "SR", "NFS storage")
    vdis_before = set(b.SR.get_VDIs(sr))
    task = a.Async.VM.migrate_send(vm, dest, True, vdi_map, vif_map, {}, {})
    deadline = time.monotonic() + 5
    while len(b.SR.get_VDIs(sr)) == len(vdis_before):  # the mirror's VDI exists on the destination
        assert time.monotonic() < deadline
        time.sleep(0.02)
    a.task.cancel(task)
    rec = _wait(a, task)
    assert rec["status"] == "cancelled"
    assert a.VM.get_power_state(vm) == "Running"
    assert a.VM.get_resident_on(vm) == _one(a, "host", "xcp-lab-1")
    assert set(b.SR.get_VDIs(sr)) == vdis_before
    assert b.VM.get_by_name_label("cache-01") == []


def test_the_destination_lost_mid_move_fails_the_task_and_the_vm_stays():
    src = Simulator.from_scenario("lab", password=PASSWORD, migration_seconds=0.6, storage_mib_s=30 * 1024 / 2)
    dst = Simulator.from_scenario("dr", password=PASSWORD, migration_seconds=0.6)
    s1, s2 = src.serve("127.0.0.1", 0), dst.serve("127.0.0.1", 0)
    try:
        a, b = (XenAPI.Session(s.url) for s in (s1, s2))
        for s in (a, b):
            s.login_with_password("root", PASSWORD, "2.21", "poolctl-tests")
        vm, vdi_map, vif_map = _maps(a.xenapi, b.xenapi, "cache-01")
        dest = _receive(b.xenapi)
        task = a.xenapi.Async.VM.migrate_send(vm, dest, True, vdi_map, vif_map, {}, {})
        time.sleep(0.5)  # in the disk phase (2 s)
        s2.close()  # the destination pool is gone
        rec = _wait(a.xenapi, task)
        assert rec["status"] == "failure"
        code, message = rec["error_info"][:2]
        assert code == "INTERNAL_ERROR"
        assert message.startswith(f"cannot reach the destination pool's master 127.0.2.1:{dst.served[1]}")
        assert dest["session_id"] not in " ".join(rec["error_info"])
        assert a.xenapi.VM.get_power_state(vm) == "Running"
        assert [a.xenapi.VDI.get_uuid(v) for v in vdi_map]  # its disk is still there
    finally:
        s1.close()
        s2.close()
