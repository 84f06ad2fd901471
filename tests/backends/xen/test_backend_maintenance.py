"""Host maintenance on the Xen backend against the simulator: host.disable/enable with XenCenter's
other_config keys, the host model and its live updates, XAPI's evacuation verdict in words."""

from __future__ import annotations

import queue
import time

import pytest
import XenAPI

from poolctl.backends.xen.maintenance import EVACUATED_MIGRATED, MAINTENANCE_MODE
from poolctl.model import Host
from tests.support.recorder import Recorder
from tests.support.xen import PASSWORD, USERNAME, by_name, connected, lab

pytestmark = pytest.mark.timeout(60)


def host(backend, name: str) -> Host:
    return next(h for h in backend.inventory().hosts if h.name == name)


def test_maintenance_writes_xencenters_keys_and_enable_returns_the_moved_vms():
    with lab() as (sim, server), connected(server.url) as backend:
        assert backend.capabilities.host_maintenance
        lab3 = host(backend, "xcp-lab-3")
        assert lab3.enabled and not lab3.maintenance and lab3.uuid
        backend.disable_host(lab3.ref, maintenance=True, evacuated=["uuid-a", "uuid-b"])
        oc = sim.db.field("host", lab3.ref, "other_config")
        assert oc[MAINTENANCE_MODE] == "true" and oc[EVACUATED_MIGRATED] == "uuid-a,uuid-b"
        assert sim.db.field("host", lab3.ref, "enabled") is False
        now = host(backend, "xcp-lab-3")
        assert (now.enabled, now.maintenance, now.evacuated) == (False, True, ("uuid-a", "uuid-b"))
        backend.disable_host(lab3.ref, maintenance=True, evacuated=["uuid-a"])  # the list is replaced
        assert host(backend, "xcp-lab-3").evacuated == ("uuid-a",)
        assert backend.enable_host(lab3.ref) == ("uuid-a",)
        oc = sim.db.field("host", lab3.ref, "other_config")
        assert MAINTENANCE_MODE not in oc and EVACUATED_MIGRATED not in oc
        now = host(backend, "xcp-lab-3")
        assert (now.enabled, now.maintenance, now.evacuated) == (True, False, ())


def test_a_plain_disable_is_not_maintenance_and_a_migration_there_is_refused_in_words():
    with lab() as (_sim, server), connected(server.url) as backend:
        inv = backend.inventory()
        lab2, web = by_name(inv, "host", "xcp-lab-2"), by_name(inv, "vm", "web-01")
        backend.disable_host(lab2)
        now = host(backend, "xcp-lab-2")
        assert not now.enabled and not now.maintenance
        check = backend.check_migration(web, lab2)
        assert not check.ok and "HOST_DISABLED" in check.codes
        assert "xcp-lab-2 is disabled: no VM may start on it or move to it" in check.problems
        assert backend.enable_host(lab2) == ()
        assert backend.check_migration(web, lab2).ok


def test_xapi_refuses_the_move_itself_naming_the_host():
    """Past the pre-check (a race): XAPI's HOST_DISABLED from pool_migrate, in words."""
    from poolctl.backends.xen.words import refusal

    text = refusal("HOST_DISABLED", ("OpaqueRef:h",), "web-01", "migrate", lambda ref: "xcp-lab-2")
    assert text == "xcp-lab-2 is disabled: no VM may start on it or move to it"


def test_busy_vm_names_the_operation_in_both_error_shapes():
    """OTHER_OPERATION_IN_PROGRESS: XAPI's [class, ref, op, task] and the older ["VM.op", ref]."""
    from poolctl.backends.xen.words import refusal

    def name_of(ref: str) -> str:
        return ref

    now = refusal(
        "OTHER_OPERATION_IN_PROGRESS", ("VM", "OpaqueRef:v", "pool_migrate", "OpaqueRef:t"), "web-01", "stop", name_of
    )
    old = refusal("OTHER_OPERATION_IN_PROGRESS", ("VM.pool_migrate", "OpaqueRef:v"), "web-01", "stop", name_of)
    assert now == "web-01 is busy with another operation (pool_migrate); try again when it has finished"
    assert old == "web-01 is busy with another operation (VM.pool_migrate); try again when it has finished"


def test_other_clients_maintenance_arrives_through_watch():
    with lab() as (_sim, server), connected(server.url) as backend:
        lab3 = by_name(backend.inventory(), "host", "xcp-lab-3")
        rec = Recorder()
        backend.watch(rec.on_change, rec.on_state)
        other = XenAPI.Session(server.url)
        other.xenapi.login_with_password(USERNAME, PASSWORD)
        try:  # XenCenter entering maintenance mode
            other.xenapi.host.add_to_other_config(lab3, MAINTENANCE_MODE, "true")
            other.xenapi.host.disable(lab3)
        finally:
            other.xenapi.session.logout()
        deadline = time.monotonic() + 15
        while True:
            try:
                change = rec.changes.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError("the host's maintenance never arrived") from None
            obj = change.obj
            if isinstance(obj, Host) and obj.ref == lab3 and obj.maintenance and not obj.enabled:
                break


def test_evacuation_blockers_say_why_in_words():
    with lab() as (_sim, server), connected(server.url) as backend:
        inv = backend.inventory()
        cache = by_name(inv, "vm", "cache-01")
        blockers = backend.evacuation_blockers(by_name(inv, "host", "xcp-lab-1"))
        assert blockers == {cache: ("XAPI: cache-01 needs SR 'Local storage xcp-lab-1', which no other host can see",)}
        assert backend.evacuation_blockers(by_name(inv, "host", "xcp-lab-3")) == {}
        backend.disable_host(by_name(inv, "host", "xcp-lab-1"))
        backend.disable_host(by_name(inv, "host", "xcp-lab-3"))
        words = backend.evacuation_blockers(by_name(inv, "host", "xcp-lab-2"))
        assert words and all(w[0].startswith("XAPI: no other enabled, live host can run ") for w in words.values())
