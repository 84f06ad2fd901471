"""Xen backend: connecting, reading the lab pool, errors in words, secrets kept out of sight."""

from __future__ import annotations

import logging
import socket

import pytest

from poolctl.backends.base import AuthenticationError, BackendError, ConnectionLost, NotFound, OperationRefused
from poolctl.backends.xen import XenBackend
from poolctl.model import GiB, MigrationOptions, PowerOp, PowerState
from tests.support.xen import PASSWORD, by_name, config, connected, lab


@pytest.fixture
def lab_server():
    with lab() as (sim, server):
        yield sim, server


def test_lists_the_lab_pool(lab_server):
    _sim, server = lab_server
    with connected(server.url) as backend:
        inv = backend.inventory()
    assert inv.pool.name == "lab" and inv.pool.backend == "xen"
    hosts = {h.name: h for h in inv.hosts}
    assert sorted(hosts) == ["xcp-lab-1", "xcp-lab-2", "xcp-lab-3"]
    assert hosts["xcp-lab-1"].is_master and inv.pool.master == hosts["xcp-lab-1"].ref
    assert not hosts["xcp-lab-2"].is_master
    lab3 = hosts["xcp-lab-3"]
    assert lab3.memory_total == 32 * GiB and 0 < lab3.memory_free < 4 * GiB  # nearly full by design
    assert lab3.cpu_count == 8 and "E5-2630" in lab3.cpu_model and lab3.software_version
    assert hosts["xcp-lab-2"].address == "127.0.1.2" and hosts["xcp-lab-2"].live and hosts["xcp-lab-2"].enabled

    vms = {v.name: v for v in inv.vms}
    assert len(vms) == 12, sorted(vms)  # no dom0, no templates, no snapshots
    assert not any("Control domain" in n or "dom0" in n.lower() for n in vms)
    web = vms["web-01"]
    assert web.power_state == PowerState.RUNNING and web.host == hosts["xcp-lab-1"].ref
    assert web.memory == 2 * GiB and web.vcpus == 2
    assert web.ips and web.ips[0] == "127.0.10.11"
    iscsi = by_name(inv, "sr", "iSCSI storage")
    assert [d.sr for d in web.disks if not d.cdrom] == [iscsi]
    assert all(d.size > 0 for d in web.disks if not d.cdrom)
    assert web.networks == (by_name(inv, "network", "VM network"),)
    assert "pool_migrate" in web.allowed_operations
    assert vms["test-01"].power_state == PowerState.HALTED and vms["test-01"].host is None
    assert len(vms["db-01"].disks) >= 2

    srs = {s.name: s for s in inv.srs}
    assert srs["iSCSI storage"].shared and set(srs["iSCSI storage"].hosts) == {h.ref for h in inv.hosts}
    assert srs["Local storage xcp-lab-1"].hosts == (hosts["xcp-lab-1"].ref,)
    assert not srs["Local storage xcp-lab-1"].shared
    assert srs["ISO library"].content_type == "iso"
    assert srs["iSCSI storage"].size == 2048 * GiB and 0 < srs["iSCSI storage"].used < srs["iSCSI storage"].size
    nets = {n.name: n for n in inv.networks}
    assert set(nets["VM network"].hosts) == {h.ref for h in inv.hosts} and nets["VM network"].bridge == "xenbr1"


def test_bad_password_is_an_authentication_error_without_the_password(lab_server):
    _sim, server = lab_server
    wrong = "Wrong-Password-123"
    backend = XenBackend(config(server.url, password=wrong))
    with pytest.raises(AuthenticationError) as err:
        backend.connect()
    text = str(err.value) + repr(err.value) + repr(err.value.params)
    assert wrong not in text and PASSWORD not in text
    assert "root" in text and "lab" in text
    backend.close()


def test_host_is_slave_is_followed_to_the_master(lab_server):
    _sim, server = lab_server
    slave_url = server.host_urls["xcp-lab-2"]
    with connected(slave_url) as backend:
        assert backend.connector.url != slave_url
        assert backend.connector.url == server.url  # the master's address, same scheme and port
        inv = backend.inventory()
        assert len(inv.hosts) == 3


def test_unreachable_master_is_connection_lost_naming_it():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once we leave: nothing listens there
    backend = XenBackend(config(f"http://127.0.0.1:{port}"))
    with pytest.raises(ConnectionLost) as err:
        backend.connect()
    assert f"127.0.0.1:{port}" in str(err.value) and PASSWORD not in str(err.value)


def test_sessions_expiring_mid_run_are_renewed(lab_server):
    sim, server = lab_server
    with connected(server.url) as backend:
        before = backend.inventory()
        sim.expire_sessions()
        after = backend.inventory()
        assert {v.ref for v in after.vms} == {v.ref for v in before.vms}
        sim.expire_sessions()
        backend.power(by_name(after, "vm", "test-01"), PowerOp.START)
        vm = next(v for v in backend.inventory().vms if v.name == "test-01")
        assert vm.power_state == PowerState.RUNNING


def test_power_refusals_name_the_vm_and_the_state(lab_server):
    _sim, server = lab_server
    with connected(server.url) as backend:
        inv = backend.inventory()
        with pytest.raises(OperationRefused) as err:
            backend.power(by_name(inv, "vm", "test-01"), PowerOp.SHUTDOWN)
        assert "test-01 is halted" in str(err.value) and "running" in str(err.value)
        assert err.value.code == "VM_BAD_POWER_STATE"
        with pytest.raises(OperationRefused) as err:
            backend.power(by_name(inv, "vm", "web-01"), PowerOp.START)
        assert "web-01 is running" in str(err.value) and "to start" in str(err.value)
        with pytest.raises(NotFound):
            backend.power("OpaqueRef:11111111-2222-3333-4444-555555555555", PowerOp.FORCE_OFF)


def test_no_secret_reaches_logs_or_errors(lab_server, caplog):
    sim, server = lab_server
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    backend = XenBackend(config(server.url))
    backend.connect()
    try:
        inv = backend.inventory()
        sim.expire_sessions()
        backend.inventory()
        for call in (
            lambda: backend.power(by_name(inv, "vm", "test-01"), PowerOp.REBOOT),
            lambda: backend.power("OpaqueRef:bogus", PowerOp.START),
            lambda: backend.migrate(by_name(inv, "vm", "test-01"), inv.hosts[0].ref, MigrationOptions()),
        ):
            with pytest.raises(Exception) as err:
                call()
            texts += [str(err.value), repr(err.value), repr(getattr(err.value, "params", ""))]
        texts.append(str(backend.check_migration(by_name(inv, "vm", "cache-01"), by_name(inv, "host", "xcp-lab-2"))))
        texts += [repr(backend), repr(backend.connector), repr(backend.config)]
        handles = set(backend.connector._handles)
    finally:
        backend.close()
    assert handles and all(h.startswith("OpaqueRef:") for h in handles)
    texts += [r.getMessage() for r in caplog.records]
    blob = "\n".join(texts)
    assert PASSWORD not in blob
    for handle in handles:
        assert handle not in blob


def test_inventory_is_one_bulk_call_per_class(lab_server):
    sim, server = lab_server
    with connected(server.url) as backend:
        server.stats.reset()
        backend.inventory()
        calls = server.stats.snapshot()
    classes = {
        "pool",
        "host",
        "host_metrics",
        "SR",
        "PBD",
        "VDI",
        "VBD",
        "VM",
        "VM_guest_metrics",
        "VIF",
        "network",
        "PIF",
    }
    # plus the event token taken before the read, from which the event loop goes on
    assert calls.pop("event.inject") == 1, calls
    assert {m.split(".")[0] for m in calls} == classes, calls
    assert all(m.endswith(".get_all_records") and n == 1 for m, n in calls.items()), calls


def test_password_command_is_used_and_its_failure_named(lab_server):
    _sim, server = lab_server
    with connected(server.url, password=None, password_command=f"printf %s {PASSWORD}") as backend:
        assert backend.inventory().hosts
    backend = XenBackend(config(server.url, password=None, password_command="false"))
    with pytest.raises(BackendError) as err:
        backend.connect()
    assert err.value.code == "BAD_CONFIG" and "password_command" in str(err.value)
