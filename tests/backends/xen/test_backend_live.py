"""Xen backend against a running simulator: events, pre-checks in words, cancel, lost connections."""

from __future__ import annotations

import re
import threading
import time

import pytest
import XenAPI

from poolctl.backends.base import CancelRefused
from poolctl.model import ConnectionStatus, GiB, MigrationOptions, MigrationPhase, PowerOp, PowerState
from tests.support.xen import PASSWORD, USERNAME, by_name, connected, lab, migrate_until, wait_state, watching


def test_change_by_another_client_arrives_through_watch():
    with lab() as (_sim, server), connected(server.url) as backend:
        inv = backend.inventory()
        rec = watching(backend)
        wait_state(rec, ConnectionStatus.CONNECTED)
        web2 = by_name(inv, "vm", "web-02")
        other = XenAPI.Session(server.url)
        other.login_with_password(USERNAME, PASSWORD, "2.x", "another-client")
        try:
            other.xenapi.VM.hard_shutdown(web2)
        finally:
            other.xenapi.session.logout()
        vm = rec.wait_vm(web2, lambda v: v.power_state == PowerState.HALTED, timeout=5.0)
        assert vm.host is None and vm.name == "web-02"


def test_migration_prechecks_in_words():
    with lab() as (_sim, server), connected(server.url) as backend:
        inv = backend.inventory()
        lab2, lab3 = by_name(inv, "host", "xcp-lab-2"), by_name(inv, "host", "xcp-lab-3")

        memory = backend.check_migration(by_name(inv, "vm", "db-01"), lab3)
        assert not memory.ok and "HOST_NOT_ENOUGH_FREE_MEMORY" in memory.codes
        words = " ".join(memory.problems)
        # XAPI's figure includes the VM's overhead, hence "8.1 GiB" for an 8 GiB VM
        assert re.fullmatch(r"not enough free memory on xcp-lab-3: needs 8(\.\d)? GiB, host has 1\.5 GiB", words), words

        local = backend.check_migration(by_name(inv, "vm", "cache-01"), lab2)
        assert "VM_REQUIRES_SR" in local.codes
        assert "disk on local SR 'Local storage xcp-lab-1' which xcp-lab-2 cannot see" in local.problems

        halted = backend.check_migration(by_name(inv, "vm", "test-01"), lab2)
        assert halted.problems == ("test-01 is halted; only a running VM can be live-migrated",)

        here = backend.check_migration(by_name(inv, "vm", "web-03"), lab2)
        assert here.problems == ("web-03 already runs on xcp-lab-2",)

        assert backend.check_migration(by_name(inv, "vm", "web-01"), lab2).ok


def test_checks_for_every_host_run_in_parallel_threads():
    with lab() as (_sim, server), connected(server.url) as backend:
        inv = backend.inventory()
        vm = by_name(inv, "vm", "web-01")
        results, errors = {}, []

        def check(host):
            try:
                results[host.name] = backend.check_migration(vm, host.ref)
            except Exception as exc:
                errors.append(exc)

        threads = [threading.Thread(target=check, args=(h,)) for h in inv.hosts for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not errors
        assert len(results) == 3 and results["xcp-lab-2"].ok
        assert results["xcp-lab-1"].codes == ("VM_ALREADY_ON_HOST",)
        assert results["xcp-lab-3"].codes == ("HOST_NOT_ENOUGH_FREE_MEMORY",)  # nearly full by design


def test_failed_migration_quotes_xapi_and_leaves_vm_on_source():
    with lab() as (_sim, server), connected(server.url) as backend:
        inv = backend.inventory()
        vm, lab1, lab3 = (
            by_name(inv, "vm", "db-01"),
            by_name(inv, "host", "xcp-lab-1"),
            by_name(inv, "host", "xcp-lab-3"),
        )
        handle = backend.migrate(vm, lab3, MigrationOptions())
        updates = list(handle.updates())
        assert updates[-1].phase == MigrationPhase.FAILED
        assert "HOST_NOT_ENOUGH_FREE_MEMORY" in updates[-1].message
        result = handle.result
        assert result.outcome == "failed" and result.host == lab1 and "HOST_NOT_ENOUGH_FREE_MEMORY" in result.error
        after = next(v for v in backend.inventory().vms if v.ref == vm)
        assert after.power_state == PowerState.RUNNING and after.host == lab1


def test_cancel_mid_migration_keeps_vm_on_source():
    with lab(migration_seconds=4.0) as (_sim, server), connected(server.url) as backend:
        inv = backend.inventory()
        vm, lab1, lab2 = (
            by_name(inv, "vm", "web-01"),
            by_name(inv, "host", "xcp-lab-1"),
            by_name(inv, "host", "xcp-lab-2"),
        )
        handle, rest = migrate_until(backend, vm, lab2, lambda p: p.cancellable and (p.fraction or 0) > 0)
        handle.cancel()
        tail = list(rest)
        assert tail and tail[-1].phase == MigrationPhase.CANCELLED
        assert handle.result.outcome == "cancelled" and handle.result.host == lab1
        after = next(v for v in backend.inventory().vms if v.ref == vm)
        assert after.power_state == PowerState.RUNNING and after.host == lab1


def test_cancel_is_refused_once_past_the_point_of_no_return():
    with lab(migration_seconds=4.0) as (_sim, server), connected(server.url) as backend:
        inv = backend.inventory()
        vm, lab2 = by_name(inv, "vm", "web-01"), by_name(inv, "host", "xcp-lab-2")
        handle, rest = migrate_until(backend, vm, lab2, lambda p: (p.fraction or 0) > 0 and not p.cancellable)
        with pytest.raises(CancelRefused) as err:
            handle.cancel()
        assert "web-01" in str(err.value) and "cancel" in str(err.value)
        tail = list(rest)
        assert tail[-1].phase == MigrationPhase.DONE and handle.result.host == lab2


def test_lost_connection_is_reported_and_recovered():
    with lab() as (sim, server), connected(server.url) as backend:
        inv = backend.inventory()
        rec = watching(backend)
        wait_state(rec, ConnectionStatus.CONNECTED)
        host, port = server.url.split("//", 1)[1].rsplit(":", 1)
        port = int(port.split("/")[0])
        server.close()
        lost = wait_state(rec, ConnectionStatus.LOST)
        seen = len(rec.states)
        assert lost.retry_in_s and lost.retry_in_s > 0 and lost.pool == "lab"
        # While we are away, the pool changes; once back, the difference must arrive.
        web2 = by_name(inv, "vm", "web-02")
        restarted = sim.serve(host=host, port=port)
        try:
            other = XenAPI.Session(restarted.url)
            other.login_with_password(USERNAME, PASSWORD, "2.x", "another-client")
            other.xenapi.VM.hard_shutdown(web2)
            other.xenapi.session.logout()
            wait_state(rec, ConnectionStatus.CONNECTED, timeout=40.0, after=seen)
            rec.wait_vm(web2, lambda v: v.power_state == PowerState.HALTED, timeout=10.0)
        finally:
            backend.close()
            restarted.close()


def test_close_stops_the_event_thread():
    with lab() as (_sim, server):
        with connected(server.url) as backend:
            backend.inventory()
            rec = watching(backend)
            wait_state(rec, ConnectionStatus.CONNECTED)
            thread = backend._watcher._thread
        assert not thread.is_alive()
        count = rec.changes.qsize()
        time.sleep(0.3)
        assert rec.changes.qsize() == count


def test_metrics_and_expired_sessions_flow_through_watch():
    with lab() as (sim, server), connected(server.url) as backend:
        inv = backend.inventory()
        rec = watching(backend)
        wait_state(rec, ConnectionStatus.CONNECTED)
        lab1 = next(h for h in inv.hosts if h.name == "xcp-lab-1")
        sim.expire_sessions()  # the long-poll's session dies under it; the SDK logs in again
        backend.power(by_name(inv, "vm", "web-01"), PowerOp.FORCE_OFF)
        rec.wait_vm(by_name(inv, "vm", "web-01"), lambda v: v.power_state == PowerState.HALTED, timeout=5.0)
        # host_metrics changed, not the host record: the Host must still come through, modified
        deadline = time.monotonic() + 5.0
        freed = None
        while freed is None and time.monotonic() < deadline:
            for change in list(rec.seen):
                if (
                    change.object_kind == "host"
                    and change.ref == lab1.ref
                    and change.obj.memory_free > lab1.memory_free
                ):
                    freed = change
            time.sleep(0.05)
        assert freed is not None and freed.kind == "modified"
        assert freed.obj.memory_free - lab1.memory_free >= 2 * GiB
        assert not [s for s in rec.states if s.status == ConnectionStatus.LOST]
