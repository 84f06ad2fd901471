"""A lost libvirt connection is shown LOST, retried with back-off, and converges once back.

A real remote connection (libvirt's remote driver over a unix socket) to a private
libvirtd serving the test driver; the daemon is stopped and started again."""

from __future__ import annotations

import queue
import time

from poolctl.backends.kvm import KvmBackend
from poolctl.config import PoolConfig
from poolctl.model import ConnectionStatus
from tests.kvm_helpers import private_libvirtd  # noqa: F401 - fixture


def _wait(q: queue.Queue, predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    seen = []
    while (left := deadline - time.monotonic()) > 0:
        try:
            item = q.get(timeout=left)
        except queue.Empty:
            break
        seen.append(item)
        if predicate(item):
            return item
    raise AssertionError(f"no {what} within {timeout} s; saw {seen}")


def test_lost_daemon_is_shown_lost_and_reconnected(private_libvirtd):
    backend = KvmBackend(PoolConfig(name="remote-test", backend="kvm", uris=(private_libvirtd.uri,)))
    backend.connect()
    try:
        inv = backend.inventory()
        host = inv.hosts[0]
        assert host.live and [v.name for v in inv.vms] == ["test"]
        changes: queue.Queue = queue.Queue()
        states: queue.Queue = queue.Queue()
        backend.watch(changes.put, states.put)
        _wait(states, lambda s: s.status == ConnectionStatus.CONNECTED, 5, "CONNECTED")

        private_libvirtd.stop()
        lost = _wait(states, lambda s: s.status == ConnectionStatus.LOST, 10, "LOST state")
        assert lost.host == host.ref and private_libvirtd.uri in lost.message and lost.retry_in_s
        gone = _wait(changes, lambda c: c.object_kind == "host", 5, "host change")
        assert gone.obj.live is False
        vm = next(v for v in backend.inventory().vms if v.name == "test")
        assert vm.power_state == "unknown"  # last known, not claimed

        private_libvirtd.start()
        _wait(states, lambda s: s.status == ConnectionStatus.CONNECTED, 20, "CONNECTED again")
        back = _wait(changes, lambda c: c.object_kind == "host" and c.obj.live, 5, "host live again")
        assert back.ref == host.ref
        vm = next(v for v in backend.inventory().vms if v.name == "test")
        assert vm.power_state == "running" and vm.host == host.ref
    finally:
        backend.close()
