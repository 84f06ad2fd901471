"""The lab itself, proven with libvirt-python alone (no poolctl code under test)."""

from __future__ import annotations

import time

import libvirt
import pytest

pytestmark = [pytest.mark.lab, pytest.mark.timeout(240)]


def test_two_distinct_hosts(lab):
    a, b = lab.conn("hostA"), lab.conn("hostB")
    assert (a.getHostname(), b.getHostname()) == ("hostA", "hostB")
    assert a.getCapabilities() != b.getCapabilities()  # host UUIDs differ
    for h in lab.hosts:
        assert lab.host_uuids[h] in lab.conn(h).getCapabilities()
        pool = lab.conn(h).storagePoolLookupByName(lab.pool_name)
        assert pool.isActive()
        assert pool.storageVolLookupByName(lab.disk_path.name).path() == str(lab.disk_path)


def test_raw_p2p_live_migration_keeps_guest_answering(guest_on_a):
    lab = guest_on_a
    assert lab.running_on() == ["hostA"]
    assert lab.ping_ok(), "guest does not answer from the client namespace before migrating"

    took = lab.migrate_raw("hostA", "hostB")
    dom_b = lab.conn("hostB").lookupByName(lab.guest_name)
    assert dom_b.state()[0] == libvirt.VIR_DOMAIN_RUNNING
    with pytest.raises(libvirt.libvirtError):  # transient: gone from the source
        lab.conn("hostA").lookupByName(lab.guest_name)
    stats = dom_b.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
    print(f"\nraw p2p A->B: {took:.2f} s, downtime {stats.get('downtime')} ms")
    t0 = time.monotonic()
    assert lab.wait_ping(10) < 10
    print(f"first ping after migration: {time.monotonic() - t0:.2f} s")
    assert lab.running_on() == ["hostB"]


def test_host_daemon_stop_and_start_keeps_its_guest(guest_on_a):
    lab = guest_on_a
    lab.stop_host("hostA")
    assert not lab.host_running("hostA")
    with pytest.raises(libvirt.libvirtError):
        libvirt.open(lab.uris["hostA"])
    assert lab.ping_ok(), "the guest must outlive its host's libvirtd, as QEMU does"
    lab.start_host("hostA")
    assert lab.running_on() == ["hostA"]  # the restarted daemon found its QEMU again
    assert lab.conn("hostA").getHostname() == "hostA"
