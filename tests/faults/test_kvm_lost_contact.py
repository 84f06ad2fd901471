"""KVM: contact with the source's libvirt daemon lost while the migrate call runs (issue 17,
defect 3 for KVM), on libvirt's test driver served by a real private libvirtd, the source
reached as ``test+tcp://`` through the fault proxy.

The test driver cannot migrate, so the handle is built as the backend would build it and its
call is the real ``migrateToURI3``: its first RPC (the daemon asked whether it does p2p) gets
no reply (the proxy holds it), and then the link is cut or the daemon killed. What the hosts
hold is real: after the fault poolctl must say the outcome is unknown, read both hosts once
they answer, and report where the VM is, or, past ``outcome_wait``, that it is not known."""

from __future__ import annotations

import threading
import time

import libvirt
import pytest

from poolctl.backends.base import CancelRefused
from poolctl.backends.kvm import KvmBackend
from poolctl.backends.kvm.migration import KvmMigration, MigrationSetup
from poolctl.config import pool_config
from poolctl.model import MigrationOptions, MigrationPhase, MigrationProgress
from poolctl.sim.libvirt import demo_config
from tests.support import fault_proxy as fp
from tests.support.kvm_helpers import by_name, private_libvirtd

__all__ = ["private_libvirtd"]
pytestmark = pytest.mark.timeout(120)

SUPPORTS_FEATURE = 60  # REMOTE_PROC_CONNECT_SUPPORTS_FEATURE
OPEN_CALLS = 3  # of it, by a connection's open (libvirt 9.0, as poolctl opens): their replies pass
VM = "kvm-web-01"  # runs on kvm-demo-a, absent from kvm-demo-b


@pytest.fixture
def pool(private_libvirtd, tmp_path):
    files = demo_config(tmp_path / "hosts").uris  # test:///…/kvm-demo-a.xml, …-b.xml
    paths = [u.removeprefix("test://") for u in files]
    with fp.FaultProxy(private_libvirtd.socket, http=False, libvirt=True) as proxy:
        uris = [
            f"test+tcp://127.0.0.1:{proxy.port}{paths[0]}",
            f"test+unix://{paths[1]}?socket={private_libvirtd.socket}",
        ]
        backend = KvmBackend(pool_config({"name": "rack", "backend": "kvm", "uris": uris, "connect_timeout_s": 5}))
        backend.connect()
        try:
            yield backend, proxy, private_libvirtd
        finally:
            backend.close()


def start(backend: KvmBackend, outcome_wait_s: float) -> KvmMigration:
    """The move as ``start_migration`` makes it (p2p, live), past the test driver's refusal."""
    inv = backend.inventory()
    web = by_name(inv, VM)
    src, _ = backend.locate(web.ref)
    dst = backend.host_by_ref(by_name(inv, "kvm-demo-b").ref)
    dom = src.conn.lookupByUUIDString(web.uuid)
    setup = MigrationSetup(notify=backend.queue.put, migrating=set(), p2p=True, migration_uris={}, timeout_s=900.0)
    handle = KvmMigration(setup, src, dst, web.uuid, web.name, dom, libvirt.VIR_MIGRATE_LIVE, {}, MigrationOptions())
    handle.outcome_wait_s = outcome_wait_s
    handle.start()
    return handle


def follow(handle: KvmMigration, fault, timeout: float = 60) -> list[MigrationProgress]:
    """updates() to the end in a thread, as the controller does; ``fault()`` runs once the
    call's reply is held (the call is in flight)."""
    seen: list[MigrationProgress] = []
    done = threading.Event()

    def body() -> None:
        for p in handle.updates():
            seen.append(p)
        done.set()

    threading.Thread(target=body, daemon=True).start()
    fault()
    assert done.wait(timeout), f"updates() still running after {timeout} s: {seen[-3:]}"
    return seen


def held_then(proxy: fp.FaultProxy, action):
    def fault() -> None:
        assert proxy.held.wait(20), f"the migrate call's RPC never went out: {proxy.seen.calls[-5:]}"
        action()

    return fault


def test_a_cut_link_is_said_unknown_then_the_vm_is_found_on_its_source(pool):
    backend, proxy, _ = pool
    proxy.hold_reply(SUPPORTS_FEATURE, after=OPEN_CALLS)
    handle = start(backend, outcome_wait_s=60)
    t0 = time.monotonic()

    def cut_for_a_while() -> None:
        proxy.refuse(4)  # every connection through it cut, new ones refused for 4 s
        while time.monotonic() - t0 < 2 and not handle._learner.lost:
            time.sleep(0.05)

    seen = follow(handle, held_then(proxy, cut_for_a_while))
    lost = [p for p in seen if p.out_of_contact]
    assert lost, [p.message for p in seen]
    assert lost[0].message == "outcome unknown: lost contact with kvm-demo-a at 0 %; still trying"
    assert not lost[0].cancellable
    res = handle.result
    assert res is not None and res.outcome == "failed", res
    assert res.host == handle.source  # read, not assumed: the source runs it, the destination has none
    assert "lost contact with kvm-demo-a at 0 %" in res.error
    assert f"read afterwards: kvm-demo-a runs VM '{VM}'; kvm-demo-b does not have VM '{VM}'" in res.error
    assert seen[-1].phase == MigrationPhase.FAILED and seen[-1].message == res.error
    assert time.monotonic() - t0 >= 4  # nothing was claimed while the source could not be read


def test_past_outcome_wait_the_outcome_is_unknown_and_no_host_is_named(pool):
    backend, proxy, _ = pool
    proxy.hold_reply(SUPPORTS_FEATURE, after=OPEN_CALLS)
    handle = start(backend, outcome_wait_s=2)
    try:
        follow(handle, held_then(proxy, lambda: proxy.refuse(60)))
    finally:
        proxy.admit()
    res = handle.result
    assert res is not None and res.outcome == "unknown" and res.host is None, res
    assert res.error.startswith("lost contact with kvm-demo-a at 0 % for ")
    assert f"how the migration of VM '{VM}' to kvm-demo-b ended is not known" in res.error
    assert "kvm-demo-a could not be read" in res.error and f"kvm-demo-b does not have VM '{VM}'" in res.error


def test_the_source_daemon_killed_mid_call_then_restarted(pool):
    backend, proxy, daemon = pool  # the one daemon serves both hosts: both are gone meanwhile
    proxy.hold_reply(SUPPORTS_FEATURE, after=OPEN_CALLS)
    handle = start(backend, outcome_wait_s=60)

    def kill_and_restart() -> None:
        daemon.stop()
        time.sleep(2)
        assert handle.result is None and handle._learner.lost  # nothing said but "unknown"
        daemon.start()

    seen = follow(handle, held_then(proxy, kill_and_restart))
    assert any(p.out_of_contact for p in seen), [p.message for p in seen]
    res = handle.result
    assert res is not None and res.outcome == "failed" and res.host == handle.source, res
    assert f"kvm-demo-a runs VM '{VM}'" in res.error


def test_cancel_while_out_of_contact_says_why_not(pool):
    backend, proxy, _ = pool
    proxy.hold_reply(SUPPORTS_FEATURE, after=OPEN_CALLS)
    handle = start(backend, outcome_wait_s=60)
    try:
        assert proxy.held.wait(20)
        proxy.refuse(60)
        deadline = time.monotonic() + 20
        while not handle._learner.lost and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(CancelRefused, match=f"lost contact with kvm-demo-a: the migration of VM '{VM}' cannot"):
            handle.cancel()
    finally:
        handle.stop_following()
        proxy.admit()
