"""KVM backend events: libvirt lifecycle events become model Changes through watch().

The periodic bulk refresh is pushed out of reach (``REFRESH_S``) wherever a change is
caused behind the backend's back: a change that arrives can then only have come from
libvirt's event, however slow the machine is."""

from __future__ import annotations

import queue
import time

import libvirt

from poolctl.model import ConnectionStatus, GiB, PowerOp, PowerState
from tests.support.kvm_helpers import by_name, wait_for

WAIT_S = 10.0  # a deadline for a stuck test, not a latency target


def _events_only(backend):
    backend.REFRESH_S = 3600.0


def _watch(backend):
    changes: queue.Queue = queue.Queue()
    states: queue.Queue = queue.Queue()
    backend.watch(changes.put, states.put)
    return changes, states


def _wait_vm(changes: queue.Queue, ref: str, predicate):
    return wait_for(
        changes, lambda c: c.object_kind == "vm" and c.ref == ref and predicate(c), f"matching change of {ref}"
    )


def test_watch_reports_connected_hosts(demo):
    inv = demo.inventory()
    _changes, states = _watch(demo)
    got = [states.get(timeout=WAIT_S) for _ in inv.hosts]
    assert {s.status for s in got} == {ConnectionStatus.CONNECTED}
    assert {s.host for s in got} == {h.ref for h in inv.hosts}
    assert all(s.pool == "kvm-demo" for s in got)


def test_destroy_and_start_arrive_as_changes_from_events(demo):
    _events_only(demo)
    inv = demo.inventory()
    web = by_name(inv, "kvm-web-01")
    changes, _ = _watch(demo)
    # Act on the domain through libvirt directly: only the event can tell the backend.
    hc = demo.host_by_ref(web.host)
    dom = hc.conn.lookupByUUIDString(web.uuid)
    dom.destroy()
    ch = _wait_vm(changes, web.ref, lambda c: c.obj.power_state == PowerState.HALTED)
    assert ch.kind == "modified" and ch.obj.host is None and ch.obj.ips == ()
    dom.create()
    ch = _wait_vm(changes, web.ref, lambda c: c.obj.power_state == PowerState.RUNNING)
    assert ch.obj.host == web.host and ch.obj.ips


def test_defined_and_undefined_domains_are_added_and_removed(demo):
    _events_only(demo)
    inv = demo.inventory()
    b = by_name(inv, "kvm-demo-b")
    changes, _ = _watch(demo)
    conn = demo.host_by_ref(b.ref).conn
    dom = conn.defineXML(
        "<domain type='test'><name>kvm-new-01</name><uuid>6b766d00-0000-4000-8000-0000000000ff</uuid>"
        "<memory unit='MiB'>512</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os></domain>"
    )
    ref = "vm:6b766d00-0000-4000-8000-0000000000ff"
    ch = _wait_vm(changes, ref, lambda c: c.kind == "added")
    assert ch.obj.name == "kvm-new-01" and ch.obj.power_state == PowerState.HALTED
    dom.undefine()
    _wait_vm(changes, ref, lambda c: c.kind == "removed")


def test_power_ops_are_reflected_by_events_and_store_converges(demo):
    from poolctl.inventory import InventoryStore

    store = InventoryStore(demo.inventory())
    log: list = []
    changes: queue.Queue = queue.Queue()
    demo.watch(lambda c: (log.append(c), changes.put(c)), lambda s: None)
    ref = by_name(store.snapshot(), "kvm-web-02").ref
    demo.power(ref, PowerOp.SUSPEND)  # managed save on the test driver
    _wait_vm(changes, ref, lambda c: c.obj.power_state == PowerState.SUSPENDED)
    demo.power(ref, PowerOp.RESUME)
    _wait_vm(changes, ref, lambda c: c.obj.power_state == PowerState.RUNNING)
    applied = 0
    deadline = time.monotonic() + WAIT_S
    while True:  # later changes (the reload after each op) may still be on their way
        for change in log[applied:]:
            store.apply(change)
            applied += 1
        if store.snapshot().vms == demo.merged().inventory.vms or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert store.snapshot().vms == demo.merged().inventory.vms == demo.inventory().vms


def test_callbacks_that_raise_do_not_stop_delivery(demo):
    _events_only(demo)
    inv = demo.inventory()
    web = by_name(inv, "kvm-web-01")
    got = queue.Queue()

    def flaky(change):
        got.put(change)
        raise RuntimeError("consumer bug")

    demo.watch(flaky, lambda s: 1 / 0)
    dom = demo.host_by_ref(web.host).conn.lookupByUUIDString(web.uuid)
    dom.suspend()
    _wait_vm(got, web.ref, lambda c: c.obj.power_state == PowerState.PAUSED)
    dom.resume()
    _wait_vm(got, web.ref, lambda c: c.obj.power_state == PowerState.RUNNING)
    assert libvirt.VIR_DOMAIN_RUNNING == dom.state()[0]


def test_changes_found_by_an_inventory_read_while_watching_still_reach_the_consumer(demo):
    _events_only(demo)
    inv = demo.inventory()
    a = by_name(inv, "kvm-demo-a")
    local = next(s for s in inv.srs if s.name == "default" and s.hosts == (a.ref,))
    changes, _ = _watch(demo)
    # A new volume raises the pool's allocation: no domain event, no refresh for an hour.
    demo.host_by_ref(a.ref).conn.storagePoolLookupByName("default").createXML(
        "<volume><name>extra.img</name><capacity unit='G'>3</capacity><allocation unit='G'>3</allocation></volume>", 0
    )
    assert next(s for s in demo.inventory().srs if s.ref == local.ref).used == local.used + 3 * GiB
    ch = wait_for(
        changes,
        lambda c: c.object_kind == "sr" and c.ref == local.ref,
        "SR change read by inventory() (the watcher must still send it)",
    )
    assert ch.kind == "modified" and ch.obj.used == local.used + 3 * GiB
