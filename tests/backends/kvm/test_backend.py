"""KVM backend inventory against libvirt's test driver (the demo pool: two private hosts)."""

from __future__ import annotations

from poolctl.backends.kvm import KvmBackend
from poolctl.model import GiB, PowerState
from poolctl.sim.libvirt import demo_config
from tests.support.kvm_helpers import by_name


def test_hosts_come_from_the_connections(demo):
    inv = demo.inventory()
    a, b = by_name(inv, "kvm-demo-a"), by_name(inv, "kvm-demo-b")
    assert a.ref.startswith("host:test:///") and a.ref.endswith("kvm-demo-a.xml")
    assert (a.memory_total, b.memory_total) == (64 * GiB, 16 * GiB)
    assert (a.cpu_count, b.cpu_count) == (16, 8)
    assert a.live and b.live
    assert a.software_version.startswith("libvirt 9.") and "TEST" in a.software_version
    # The test driver reports no free memory: estimated as total minus running domains.
    assert b.memory_free == 16 * GiB - 2 * GiB - 1 * GiB
    assert inv.pool.name == "kvm-demo" and inv.pool.backend == "kvm"


def test_domains_become_vms_with_state_resources_and_ips(demo):
    inv = demo.inventory()
    web = by_name(inv, "kvm-web-01")
    a = by_name(inv, "kvm-demo-a")
    assert web.ref == f"vm:{web.uuid}" and web.power_state == PowerState.RUNNING
    assert web.host == a.ref and web.vcpus == 2 and web.memory == 2 * GiB
    assert web.ips and web.ips[0].startswith("192.168.122.")  # interfaceAddresses
    assert web.description == "public web frontend"
    assert by_name(inv, "kvm-cache-01").power_state == PowerState.PAUSED
    build = by_name(inv, "kvm-build-01")
    assert build.power_state == PowerState.HALTED and build.host is None and build.ips == ()
    assert by_name(inv, "kvm-test-01").power_state == PowerState.SUSPENDED  # managed save
    assert "start" in build.allowed_operations and "shutdown" in web.allowed_operations
    assert "migrate" not in web.allowed_operations  # the test driver cannot migrate


def test_a_domain_defined_on_two_hosts_is_one_vm_where_it_runs(demo):
    inv = demo.inventory()
    apps = [v for v in inv.vms if v.name == "kvm-app-01"]
    assert len(apps) == 1
    assert apps[0].power_state == PowerState.RUNNING
    assert apps[0].host == by_name(inv, "kvm-demo-a").ref
    assert len({v.ref for v in inv.vms}) == len(inv.vms) == 9


def test_storage_pools_shared_when_every_host_sees_the_same_source(demo):
    inv = demo.inventory()
    a, b = by_name(inv, "kvm-demo-a"), by_name(inv, "kvm-demo-b")
    vmstore = next(s for s in inv.srs if s.name == "vmstore")
    assert vmstore.ref == "sr:vmstore" and vmstore.shared and vmstore.type == "netfs"
    assert set(vmstore.hosts) == {a.ref, b.ref}
    isos = next(s for s in inv.srs if s.name == "isos")
    assert isos.shared and set(isos.hosts) == {a.ref, b.ref}  # listed in shared_storage
    local = [s for s in inv.srs if s.name == "default"]
    assert len(local) == 2 and not any(s.shared for s in local)
    assert {s.hosts for s in local} == {(a.ref,), (b.ref,)}
    assert vmstore.size > 0 and 0 < vmstore.used <= vmstore.size


def test_disks_map_to_their_storage_and_nics_to_networks(demo):
    inv = demo.inventory()
    db = by_name(inv, "kvm-db-01")
    assert [(d.device, d.sr, d.size) for d in db.disks] == [
        ("vda", "sr:vmstore", 200 * GiB),
        ("vdb", "sr:vmstore", 500 * GiB),
    ]
    assert db.networks == ("net:default", "net:backend")
    build = by_name(inv, "kvm-build-01")
    cd = next(d for d in build.disks if d.cdrom)
    assert cd.sr == "sr:isos" and cd.name.endswith(".iso")
    web2 = by_name(inv, "kvm-web-02")
    assert web2.disks[0].sr.startswith("sr:default@") and web2.disks[0].sr.endswith("kvm-demo-a.xml")
    nets = {n.ref: n for n in inv.networks}
    assert nets["net:default"].bridge == "virbr0" and len(nets["net:default"].hosts) == 2
    assert nets["net:backend"].hosts == (by_name(inv, "kvm-demo-a").ref,)
    # a plain Linux bridge (interface type='bridge') is a network too
    assert by_name(inv, "kvm-web-03").networks == ("br:br0",)
    assert nets["br:br0"].hosts == (by_name(inv, "kvm-demo-b").ref,)


def test_refs_are_stable_across_connections(tmp_path):
    cfg = demo_config(tmp_path)
    refs = []
    for _ in range(2):
        b = KvmBackend(cfg)
        b.connect()
        inv = b.inventory()
        refs.append(sorted(o.ref for o in (*inv.hosts, *inv.srs, *inv.networks, *inv.vms)))
        b.close()
    assert refs[0] == refs[1]


def test_test_driver_narrows_live_migration_with_a_reason(demo):
    caps = demo.capabilities
    assert KvmBackend.SUPPORTS_LIVE_MIGRATION and KvmBackend.IMPLEMENTS_CANCEL and KvmBackend.REPORTS_DOWNTIME
    assert not caps.live_migration and caps.reason == "libvirt's test driver cannot migrate"
    assert caps.migration_options == {
        "max_downtime_ms",
        "bandwidth_mib_s",
        "auto_converge",
        "post_copy",
        "copy_storage",
        "parallel",
        "compress",
    }
