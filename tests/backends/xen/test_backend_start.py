"""Xen backend at scale: the pool is read once (token, then records), the event loop goes on from
there, and nothing afterwards reads what grows with the number of VMs."""

from __future__ import annotations

import time

import XenAPI

from poolctl.backends.xen.translate import CLASSES, Translator
from poolctl.model import ConnectionStatus, PowerState
from tests.support.xen import PASSWORD, USERNAME, by_name, connected, lab, wait_state, watching


def _other_client(url: str) -> XenAPI.Session:
    other = XenAPI.Session(url)
    other.login_with_password(USERNAME, PASSWORD, "2.x", "another-client")
    return other


def _tokens_asked(server) -> list[str]:
    """Spy on the simulator: the token of every event.from it serves."""
    asked: list[str] = []
    real = server.dispatcher.call

    def call(method, params, host):
        if method == "event.from":
            asked.append(params[2])
        return real(method, params, host)

    server.dispatcher.call = call
    return asked


def test_watch_goes_on_from_the_inventory_without_a_second_read():
    with lab() as (_sim, server), connected(server.url) as backend:
        backend.inventory()
        server.stats.reset()
        asked = _tokens_asked(server)
        rec = watching(backend)
        wait_state(rec, ConnectionStatus.CONNECTED)
        time.sleep(0.5)  # let the first event.from (the injected pool event) go by
        calls = server.stats.snapshot()
        assert not rec.seen, rec.seen  # nothing changed: nothing to deliver
    assert calls["event.from"] >= 1 and asked, calls
    assert "" not in asked, asked  # an empty token is a full read
    assert not [m for m in calls if m.endswith("get_all_records")], calls
    assert set(calls) <= {"event.from", "session.login_with_password", "session.logout"}, calls


def test_a_lost_connection_reads_everything_again():
    with lab() as (sim, server), connected(server.url) as backend:
        inv = backend.inventory()
        rec = watching(backend)
        wait_state(rec, ConnectionStatus.CONNECTED)
        host, port = server.url.split("//", 1)[1].rsplit(":", 1)
        server.close()
        wait_state(rec, ConnectionStatus.LOST)
        seen = len(rec.states)
        restarted = sim.serve(host=host, port=int(port.split("/")[0]))
        try:
            restarted.stats.reset()
            wait_state(rec, ConnectionStatus.CONNECTED, timeout=40.0, after=seen)
            calls = restarted.stats.snapshot()
        finally:
            backend.close()
            restarted.close()
    assert calls["event.inject"] == 1 and calls["VM.get_all_records"] == 1, calls
    assert not rec.seen and inv.vms  # nothing changed while away: no changes delivered


def test_change_between_inventory_and_watch_arrives():
    with lab() as (_sim, server), connected(server.url) as backend:
        inv = backend.inventory()
        web2 = by_name(inv, "vm", "web-02")
        assert next(v for v in inv.vms if v.ref == web2).power_state == PowerState.RUNNING
        other = _other_client(server.url)
        try:
            other.xenapi.VM.hard_shutdown(web2)  # after the read, before the watch
        finally:
            other.xenapi.session.logout()
        rec = watching(backend)
        vm = rec.wait_vm(web2, lambda v: v.power_state == PowerState.HALTED, timeout=5.0)
        assert vm.host is None


def test_records_cut_to_the_fields_read_give_the_same_models():
    with lab() as (_sim, server), connected(server.url) as backend:
        inv = backend.inventory()
        other = _other_client(server.url)
        try:
            full = {cls: getattr(other.xenapi, api).get_all_records() for cls, api in CLASSES.items()}
        finally:
            other.xenapi.session.logout()
    assert len(full["vm"][inv.vms[0].ref]) > 50  # really the full records
    models = Translator(full, pool_name="lab").models()
    assert sorted(models.values(), key=repr) == sorted(
        [inv.pool, *inv.hosts, *inv.srs, *inv.networks, *inv.vms], key=repr
    )


def test_migration_checks_read_nothing_that_grows_with_the_pool():
    with lab() as (_sim, server), connected(server.url) as backend:
        inv = backend.inventory()
        backend.watch(lambda c: None, lambda s: None)
        cache01 = by_name(inv, "vm", "cache-01")
        server.stats.reset()
        checks = [backend.check_migration(cache01, h.ref) for h in inv.hosts]
        calls = server.stats.snapshot()
    assert any("VM_REQUIRES_SR" in c.codes for c in checks)  # its disk is on a local SR
    assert not [m for m in calls if "get_all" in m], calls
    assert calls["VM.get_record"] == len(inv.hosts), calls


def test_migration_checks_work_before_any_inventory():
    with lab() as (_sim, server), connected(server.url) as backend:
        other = _other_client(server.url)
        try:
            vms = other.xenapi.VM.get_all_records()
            hosts = other.xenapi.host.get_all_records()
        finally:
            other.xenapi.session.logout()
        cache01 = next(r for r, v in vms.items() if v["name_label"] == "cache-01")
        lab2 = next(r for r, h in hosts.items() if h["name_label"] == "xcp-lab-2")
        server.stats.reset()
        check = backend.check_migration(cache01, lab2)
        calls = server.stats.snapshot()
    assert "disk on local SR 'Local storage xcp-lab-1' which xcp-lab-2 cannot see" in check.problems
    assert calls["VBD.get_record"] >= 1 and calls["VDI.get_record"] >= 1, calls
    assert not [m for m in calls if m.startswith(("VM.get_all", "VBD.get_all", "VDI.get_all", "VIF.get_all"))], calls
