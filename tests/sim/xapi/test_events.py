"""event.from / event.inject through the SDK: tokens, coalesced add/mod/del, long-poll timeouts."""

from __future__ import annotations

import re
import threading
import time
import xmlrpc.client

import pytest
import XenAPI

from .conftest import PASSWORD, host_named, vm_named

TOKEN = re.compile(r"^\d{20},\d{20}$")


def test_empty_token_returns_every_object_as_add(api):
    result = api.event_from(["vm"], "", 5.0)
    assert set(result) == {"events", "valid_ref_counts", "token"}
    assert TOKEN.match(result["token"])
    events = result["events"]
    refs = set(api.VM.get_all())
    assert {e["ref"] for e in events} == refs and len(events) == len(refs)
    for e in events:
        assert e["class"] == "vm" and e["operation"] == "add"
        assert isinstance(e["id"], str) and isinstance(e["timestamp"], str)
        assert e["snapshot"]["uuid"] == api.VM.get_uuid(e["ref"])
    assert result["valid_ref_counts"]["vm"] == len(refs)  # a real <int>, as xapi sends it


def test_power_operation_produces_mod_events(api):
    token = api.event_from(["vm", "host", "host_metrics"], "", 5.0)["token"]
    vm, lab1 = vm_named(api, "web-01"), host_named(api, "xcp-lab-1")
    metrics = api.host.get_metrics(lab1)
    free_before = int(api.host_metrics.get_memory_free(metrics))
    api.VM.hard_shutdown(vm)
    seen: dict = {}
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not {vm, lab1, metrics} <= set(seen):
        result = api.event_from(["vm", "host", "host_metrics"], token, 2.0)
        token = result["token"]
        for e in result["events"]:
            assert e["operation"] == "mod"
            seen[e["ref"]] = e["snapshot"]
    assert seen[vm]["power_state"] == "Halted" and seen[vm]["resident_on"] == "OpaqueRef:NULL"
    assert vm not in seen[lab1]["resident_VMs"]
    assert int(seen[metrics]["memory_free"]) > free_before


def test_subscriptions_star_object_and_case(api):
    vm = vm_named(api, "web-02")
    everything = api.event_from(["*"], "", 5.0)
    classes = {e["class"] for e in everything["events"]}
    assert {"vm", "host", "sr", "pbd", "vdi", "vbd", "vif", "network", "pif", "pool", "host_metrics"} <= classes
    one = api.event_from([f"VM/{vm}"], "", 5.0)
    assert [e["ref"] for e in one["events"]] == [vm]


def test_inject_and_del_events(api):
    vm = vm_named(api, "db-01")
    token = api.event.inject("VM", vm)
    result = api.event_from(["vm"], token, 5.0)
    assert [(e["ref"], e["operation"]) for e in result["events"]] == [(vm, "mod")]
    task = api.Async.VM.clean_reboot(vm)
    token = result["token"]
    done = {}
    while done.get(task, {}).get("status") != "success":
        result = api.event_from(["task"], token, 5.0)
        token = result["token"]
        done.update({e["ref"]: e["snapshot"] for e in result["events"]})
    api.task.destroy(task)
    result = api.event_from(["task"], token, 5.0)
    assert [(e["ref"], e["operation"]) for e in result["events"]] == [(task, "del")]
    assert "snapshot" not in result["events"][0]
    with pytest.raises(XenAPI.Failure) as exc:
        api.event.inject("VM", "OpaqueRef:gone")
    assert exc.value.details == ["HANDLE_INVALID", "VM", "OpaqueRef:gone"]


def test_bad_token(api):
    with pytest.raises(XenAPI.Failure) as exc:
        api.event_from(["vm"], "not-a-token", 1.0)
    assert exc.value.details == ["EVENT_FROM_TOKEN_PARSE_FAILURE", "not-a-token"]


def test_long_poll_times_out_while_other_calls_proceed(api, server):
    token = api.event_from(["vm"], "", 5.0)["token"]
    poller = XenAPI.Session(server.url)
    poller.login_with_password("root", PASSWORD)
    outcome = {}

    def poll():
        t0 = time.monotonic()
        outcome["result"] = poller.xenapi.event_from(["vm"], token, 1.5)
        outcome["took"] = time.monotonic() - t0

    thread = threading.Thread(target=poll)
    thread.start()
    time.sleep(0.2)
    t0 = time.monotonic()
    for _ in range(20):
        api.host.get_all_records()  # concurrent calls are served while the poll waits
    others_took = time.monotonic() - t0
    assert thread.is_alive(), "the long-poll returned before its timeout"
    thread.join(10)
    assert outcome["result"]["events"] == []
    # waited out its 1.5 s timeout; the upper bound is only a deadline (CI is a loaded 2-core box)
    assert 1.3 <= outcome["took"] < 30.0
    assert others_took < outcome["took"]
    assert TOKEN.match(outcome["result"]["token"])
    poller.xenapi.session.logout()


def test_long_poll_wakes_on_change(api, sim, server):
    token = api.event_from(["vm"], "", 5.0)["token"]
    vm = vm_named(api, "app-02")
    timer = threading.Timer(0.3, lambda: sim.set_power_state("app-02", "Halted"))
    timer.start()
    t0 = time.monotonic()
    result = api.event_from(["vm"], token, 20.0)
    assert time.monotonic() - t0 < 10
    assert any(e["ref"] == vm and e["snapshot"]["power_state"] == "Halted" for e in result["events"])


def test_expiry_during_long_poll_is_session_invalid(server, sim):
    raw = xmlrpc.client.ServerProxy(server.url)
    ref = raw.session.login_with_password("root", PASSWORD, "2.21", "raw")["Value"]
    token = raw.event_from(ref, ["vm"], "", 5.0)["Value"]["token"]
    threading.Timer(0.3, sim.expire_sessions).start()
    reply = raw.event_from(ref, ["vm"], token, 20.0)
    assert reply == {"Status": "Failure", "ErrorDescription": ["SESSION_INVALID", ref]}


def test_close_wakes_long_polls(api, server):
    token = api.event_from(["vm"], "", 5.0)["token"]
    threading.Timer(0.3, server.close).start()
    t0 = time.monotonic()
    try:
        api.event_from(["vm"], token, 30.0)
    except (OSError, xmlrpc.client.ProtocolError, XenAPI.Failure):
        pass  # the connection may be cut on close; what matters is that the poll ended promptly
    assert time.monotonic() - t0 < 5
