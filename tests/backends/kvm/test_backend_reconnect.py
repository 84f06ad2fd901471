"""A lost libvirt connection is shown LOST, retried with back-off, and converges once back.

A real remote connection (libvirt's remote driver over a unix socket) to a private
libvirtd serving the test driver; the daemon is stopped and started again.

Each wait is for the change it names (the watcher's 5 s refreshes send host changes of their
own meanwhile), with deadlines for a stuck test, not latency targets: a loaded machine is slow."""

from __future__ import annotations

import queue

from poolctl.backends.kvm import KvmBackend
from poolctl.config import pool_config
from poolctl.model import ConnectionStatus
from tests.support.kvm_helpers import wait_for

DEADLINE_S = 60.0


def test_lost_daemon_is_shown_lost_and_reconnected(private_libvirtd):
    backend = KvmBackend(pool_config({"name": "remote-test", "backend": "kvm", "uris": [private_libvirtd.uri]}))
    backend.connect()
    try:
        inv = backend.inventory()
        host = inv.hosts[0]
        assert host.live and [v.name for v in inv.vms] == ["test"]
        changes: queue.Queue = queue.Queue()
        states: queue.Queue = queue.Queue()
        backend.watch(changes.put, states.put)
        wait_for(states, lambda s: s.status == ConnectionStatus.CONNECTED, "CONNECTED", DEADLINE_S)

        private_libvirtd.stop()
        lost = wait_for(states, lambda s: s.status == ConnectionStatus.LOST, "LOST state", DEADLINE_S)
        assert lost.host == host.ref and private_libvirtd.uri in lost.message and lost.retry_in_s
        gone = wait_for(
            changes,
            lambda c: c.object_kind == "host" and c.obj is not None and not c.obj.live,
            "host not live",
            DEADLINE_S,
        )
        assert gone.ref == host.ref
        vm = next(v for v in backend.inventory().vms if v.name == "test")
        assert vm.power_state == "unknown"  # last known, not claimed

        private_libvirtd.start()
        wait_for(states, lambda s: s.status == ConnectionStatus.CONNECTED, "CONNECTED again", DEADLINE_S)
        back = wait_for(changes, lambda c: c.object_kind == "host" and c.obj.live, "host live again", DEADLINE_S)
        assert back.ref == host.ref
        vm = next(v for v in backend.inventory().vms if v.name == "test")
        assert vm.power_state == "running" and vm.host == host.ref
    finally:
        backend.close()
