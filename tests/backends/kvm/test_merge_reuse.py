"""The merge hands out an unchanged VM again (one copy of the pool between snapshots), and a
new one, equal to a fresh build, when anything it shows changed; a host's bulk calls made at
once give what they give one after another. Real test-driver hosts throughout."""

from __future__ import annotations

import functools
import threading

import libvirt
import pytest

from benchmarks.libvirt_host import host_uri
from poolctl.backends.kvm import KvmBackend, bulkcalls
from poolctl.config import pool_config
from poolctl.model import PowerState


@pytest.fixture
def backend(tmp_path):
    b = KvmBackend(pool_config({"name": "p", "backend": "kvm", "uris": [host_uri(tmp_path / "h.xml", 30)]}))
    b.connect()
    b.inventory()
    yield b
    b.close()


def test_an_unchanged_rebuild_hands_out_the_same_vms(backend):
    before = backend.merged().inventory
    with backend.lock:
        after = backend.rebuild().inventory
    assert after.vms == before.vms
    assert all(a is b for a, b in zip(after.vms, before.vms))


def test_a_change_makes_a_new_vm_equal_to_a_fresh_build(backend):
    hc = backend.hosts[0]
    before = {v.uuid: v for v in backend.merged().inventory.vms}
    running = next(u for u, v in before.items() if v.power_state == PowerState.RUNNING)
    hc.conn.lookupByUUIDString(running).destroy()
    with backend.lock:
        hc.load(full=False)
        changed = {v.uuid: v for v in backend.rebuild().inventory.vms}
        for rec in hc.domains.values():
            rec.vm = None  # what a merge from scratch makes
        fresh = {v.uuid: v for v in backend.rebuild().inventory.vms}
    assert changed == fresh
    assert changed[running].power_state == PowerState.HALTED and changed[running] is not before[running]
    # its disks and nics did not change: the same objects
    new, old = changed[running], before[running]
    assert all(a is b for a, b in zip(new.disks + new.nics, old.disks + old.nics, strict=True))
    assert all(changed[u] is before[u] for u in before if u != running)


def test_bulk_calls_at_once_give_what_one_after_another_gives(tmp_path):
    conn = libvirt.open(host_uri(tmp_path / "b.xml", 5))
    try:
        threads: set[str] = set()

        def names() -> list[str]:
            threads.add(threading.current_thread().name)
            return sorted(d.name() for d in conn.listAllDomains(0))

        def fails() -> None:
            conn.lookupByName("no-such-domain")

        calls = {"names": names, "free": conn.getFreeMemory, "fails": fails}
        serial, parallel = bulkcalls.Calls(calls, at_once=False), bulkcalls.Calls(calls, at_once=True)
        assert serial.get("names") == parallel.get("names") == [f"vm-{i:05d}" for i in range(5)]
        assert any(t.startswith("kvm-bulk") for t in threads)
        for got in (serial, parallel):
            with pytest.raises(libvirt.libvirtError):
                got.get("fails")  # raised where it is asked for, as a plain call would
    finally:
        conn.close()


def test_follow_ups_and_started_threads_give_what_one_after_another_gives(tmp_path):
    conn = libvirt.open(host_uri(tmp_path / "f.xml", 5))
    threads = bulkcalls.Threads()
    threads.start()
    try:
        pool = threads.pool(wait_s=10)
        assert pool is not None and len(pool._threads) == bulkcalls.MAX_THREADS  # all started beforehand
        calls = {"pools": lambda: conn.listAllStoragePools(0), "free": conn.getFreeMemory}
        follow = {"pools": lambda pools: {f"pool {p.name()}": functools.partial(p.XMLDesc, 0) for p in pools}}
        serial = bulkcalls.Calls(calls, at_once=False, follow=follow)
        together = bulkcalls.Calls(calls, at_once=True, follow=follow, threads=threads)
        for got in (serial, together):
            assert [p.name() for p in got.get("pools")] == ["default"]
            assert "<name>default</name>" in got.get("pool default")
        threads.close()
        assert threads.pool() is None  # a closed connection's calls make their own threads
        assert bulkcalls.Calls(calls, at_once=True, follow=follow, threads=threads).get("pool default")
    finally:
        threads.close()
        conn.close()
