"""The KVM backend's first paint costs a fixed number of libvirt calls per host, whatever the
number of domains (over a link, round trips x domains is what made 1,000 domains take 76 s);
what only each domain's own calls tell comes after it, read many at a time.

Test-driver hosts of N domains are written into tmp_path; the real connections are wrapped in a
counter (tests/backends/kvm/counting.py) that passes every call on to libvirt."""

from __future__ import annotations

import time

import libvirt
import pytest

from benchmarks.libvirt_host import host_uri
from poolctl.backends.kvm import KvmBackend, details
from poolctl.backends.kvm.details import IN_FLIGHT
from poolctl.config import pool_config
from poolctl.inventory import InventoryStore
from poolctl.model import ConnectionStatus, PowerState
from tests.backends.kvm.counting import Calls, counting_open
from tests.support.recorder import Recorder

pytestmark = pytest.mark.timeout(120)


def _backend(tmp_path, domains: int, monkeypatch) -> tuple[KvmBackend, Calls]:
    uri = host_uri(tmp_path / f"host-{domains}.xml", domains)
    calls = Calls()
    monkeypatch.setattr(libvirt, "openAuth", counting_open(calls))
    return KvmBackend(pool_config({"name": f"big-{domains}", "backend": "kvm", "uris": [uri]})), calls


def test_the_first_paint_costs_the_same_calls_at_10_and_1000_domains(tmp_path, monkeypatch):
    before_paint, one_event = {}, {}
    for domains in (10, 1000):
        backend, calls = _backend(tmp_path, domains, monkeypatch)
        try:
            backend.connect()
            first = backend.first_inventory()
            before_paint[domains] = calls.snapshot()
            # what a domain's event costs: that domain's calls and the host's free memory
            backend.hosts[0].reload_domain(first.vms[0].uuid)
            one_event[domains] = calls.snapshot() - before_paint[domains]
        finally:
            backend.close()
        assert len(first.vms) == domains
        states = [v.power_state for v in first.vms]
        assert states.count(PowerState.RUNNING) == domains - domains // 3
        assert states.count(PowerState.HALTED) == domains // 3
        assert all(v.host == first.hosts[0].ref for v in first.vms if v.power_state == PowerState.RUNNING)
        assert not any(v.devices_known for v in first.vms)
    small, large = before_paint[10], before_paint[1000]
    assert large == small, f"the first paint's calls grew with the domains: {large - small}"
    assert not [name for name in large if name.startswith("Domain.")], f"a call per domain: {large}"
    assert large["Connect.getAllDomainStats"] == 1
    assert one_event[10] == one_event[1000] and one_event[1000]["Domain.XMLDesc"] == 1


@pytest.mark.parametrize("in_flight", [1, IN_FLIGHT])
def test_watch_delivers_every_domain_read_before_the_host_is_connected(tmp_path, monkeypatch, in_flight):
    backend, calls = _backend(tmp_path, 1000, monkeypatch)
    backend.hosts[0].in_flight = in_flight
    backend.REFRESH_S = 600  # no periodic refresh: its calls would overlap the reader's
    try:
        backend.connect()
        store = InventoryStore(backend.first_inventory())
        rec = Recorder()
        backend.watch(rec.on_change, rec.on_state)
        deadline = time.monotonic() + 60
        while not any(s.status == ConnectionStatus.CONNECTED for s in rec.states):
            assert time.monotonic() < deadline, f"not connected within 60 s: {rec.states}"
            time.sleep(0.05)
        for change in list(rec.seen):
            store.apply(change)
        assert store.devices_pending is False
        vms = store.vms.values()
        assert all(v.disks and v.nics and v.description for v in vms)
        assert all(v.vcpus == 2 and v.memory == 1024**3 for v in vms)
        assert all(v.ips for v in vms if v.power_state == PowerState.RUNNING)
        # each domain's definition read once, never more calls at once than the bound
        assert calls.snapshot()["Domain.XMLDesc"] == 1000
        assert calls.most_in_flight <= in_flight
        assert {v.ref: v for v in backend.inventory().vms} == store.vms
    finally:
        backend.close()


def test_inventory_reads_the_domains_many_at_a_time(tmp_path, monkeypatch):
    backend, calls = _backend(tmp_path, 300, monkeypatch)
    # as over a link: an in-process test:/// connection reads one domain at a time otherwise
    backend.hosts[0].in_flight = IN_FLIGHT
    try:
        backend.connect()
        inv = backend.inventory()
    finally:
        backend.close()
    assert len(inv.vms) == 300 and all(v.devices_known and v.disks for v in inv.vms)
    assert all(d.size == 10 * 1024**3 for v in inv.vms for d in v.disks)  # from the volumes
    assert calls.snapshot()["Domain.XMLDesc"] == 300
    assert 1 < calls.most_in_flight <= IN_FLIGHT


def test_a_read_begun_before_the_one_applied_is_dropped(tmp_path, monkeypatch):
    backend, _calls = _backend(tmp_path, 3, monkeypatch)
    try:
        backend.connect()
        hc = backend.hosts[0]
        uuid = next(iter(hc.domains))
        early, reads = hc.stamp(), []
        details.read_many(hc.conn, hc.pending(), lambda u, got: reads.append((u, got, early)), alive=hc.alive)
        # the domain changes, and its event's re-read comes in first
        hc.conn.lookupByUUIDString(uuid).setMetadata(libvirt.VIR_DOMAIN_METADATA_TITLE, "retitled", None, None, 0)
        hc.reload_domain(uuid)
        hc.apply(reads)
        assert hc.domains[uuid].info.description == "retitled"
        others = [u for u in hc.domains if u != uuid]
        assert all(hc.domains[u].detailed for u in others)  # read once, so the early read applied
    finally:
        backend.close()
