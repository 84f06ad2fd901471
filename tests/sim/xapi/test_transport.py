"""Wire behaviour as xapi's: introspection, counting, async, control characters, members."""

from __future__ import annotations

import urllib.request
import xmlrpc.client

import pytest
import XenAPI

from .conftest import PASSWORD, vm_named, wait_task
from .test_jsonrpc import v2


def failure(call, *args) -> list[str]:
    with pytest.raises(XenAPI.Failure) as exc:
        call(*args)
    return exc.value.details


def test_list_methods_is_a_bare_array_over_xmlrpc_and_a_result_over_jsonrpc(server):
    methods = xmlrpc.client.ServerProxy(server.url).system.listMethods()  # no {Status, Value}
    assert isinstance(methods, list) and len(methods) > 800
    assert {"VM.start", "VM.get_record", "VM.set_VCPUs_max", "host.evacuate", "event.from"} <= set(methods)
    assert not any(m.startswith("Async.") for m in methods)
    assert v2(server.url, "system.listMethods")["result"] == methods


def test_method_help_and_signature_are_unknown_as_in_xapi(server):
    raw = xmlrpc.client.ServerProxy(server.url)
    for name in ("system.methodHelp", "system.methodSignature"):
        assert getattr(raw, name)("VM.start") == {
            "Status": "Failure",
            "ErrorDescription": ["MESSAGE_METHOD_UNKNOWN", name],
        }
    assert raw.__getattr__("system.isAlive:x")("ping") == {"Status": "Success", "Value": "ping"}


def test_parameter_count_without_the_session_and_async_without_async(api, session):
    assert failure(api.VM.start, vm_named(api, "test-01")) == ["MESSAGE_PARAMETER_COUNT_MISMATCH", "VM.start", "3", "1"]
    with pytest.raises(XenAPI.Failure) as exc:
        session.xenapi_request("Async.VM.get_record", (vm_named(api, "test-01"),))
    assert exc.value.details == ["Fault", "No async mode for this operation (rpc: VM.get_record)"]


def test_void_async_result_is_marshalled_empty_string(api):
    task = api.Async.VM.start(vm_named(api, "test-01"), False, False)
    assert wait_task(api, task)["result"] == "<value></value>"


def test_control_characters_never_reach_the_xml(server, api):
    vm = vm_named(api, "web-01")
    token = v2(server.url, "session.login_with_password", "root", PASSWORD)["result"]
    assert (
        v2(server.url, "VM.set_name_label", token, vm, 'web\x1b[31m "01"\x07')["result"] == ""
    )  # void: the marshalled ""
    assert v2(server.url, "VM.get_name_label", token, vm)["result"] == 'web\x1b[31m "01"\x07'  # JSON escapes
    assert api.VM.get_name_label(vm) == 'web[31m "01"'  # ocaml-rpc's XML-RPC drops C0 controls
    body = xmlrpc.client.dumps((token, vm), "VM.get_name_label").encode()
    with urllib.request.urlopen(urllib.request.Request(server.url, data=body), timeout=10) as resp:
        text = resp.read().decode()
    assert "\x1b" not in text and "&quot;01&quot;" in text


def test_member_answers_an_external_session_with_host_is_slave(server, session):
    member = XenAPI.Session(server.host_urls["xcp-lab-2"])
    member._session = session._session  # the master's session, used on a member
    assert failure(member.xenapi.VM.get_all) == ["HOST_IS_SLAVE", "127.0.1.1"]
    raw = xmlrpc.client.ServerProxy(server.host_urls["xcp-lab-2"])  # the SDK would re-login itself
    assert raw.VM.get_all("OpaqueRef:not-a-session")["ErrorDescription"][0] == "SESSION_INVALID"
    member.slave_local_login_with_password("root", PASSWORD)
    assert member.xenapi.VM.get_all()  # a local session is served there


def test_other_operation_in_progress_shape(lab_factory):
    _sim, _server, api = lab_factory(power_seconds=1.0)
    vm = vm_named(api, "test-01")
    task = api.Async.VM.start(vm, False, False)
    wait = [api.VM.get_current_operations(vm) for _ in range(50) if not api.VM.get_current_operations(vm)]
    assert wait is not None and api.VM.get_current_operations(vm) == {task: "start"}
    assert failure(api.VM.clone, vm, "x") == ["OTHER_OPERATION_IN_PROGRESS", "VM", vm, "start", task]
    wait_task(api, task)


def test_valid_ref_counts_cover_every_table(api):
    counts = api.event_from(["vm"], "", "0")["valid_ref_counts"]
    assert counts["vm"] == len(api.VM.get_all()) and counts["session"] >= 1
    assert counts["host_cpu"] == len(api.host_cpu.get_all()) > 0 and counts["vgpu"] == 0
    assert "message" not in counts and len(counts) > 50


def test_legacy_event_register_next_unregister(api):
    assert failure(api.event.next)[0] == "SESSION_NOT_REGISTERED"
    api.event.register(["vm"])
    vm = vm_named(api, "test-01")
    api.VM.set_name_description(vm, "changed")
    events = api.event.next()
    assert any(e["ref"] == vm and e["operation"] == "mod" and e["class"] == "vm" for e in events)
    assert all(e["class"] == "vm" for e in events)
    api.event.unregister(["vm"])


def test_setters_check_as_xapi(api):
    vm = vm_named(api, "test-01")  # halted
    api.VM.set_VCPUs_max(vm, "4")
    api.VM.set_VCPUs_at_startup(vm, "3")
    assert api.VM.get_VCPUs_max(vm) == "4" and api.VM.get_VCPUs_at_startup(vm) == "3"
    msg = "VCPU values must satisfy: 0 < VCPUs_at_startup ≤ VCPUs_max"
    assert failure(api.VM.set_VCPUs_max, vm, "2") == ["INVALID_VALUE", msg, "2"]
    assert failure(api.VM.set_VCPUs_at_startup, vm, "5") == ["INVALID_VALUE", msg, "5"]
    gib = 2**30
    api.VM.set_memory_limits(vm, str(gib), str(4 * gib), str(2 * gib), str(3 * gib))
    rec = api.VM.get_record(vm)
    assert (rec["memory_static_min"], rec["memory_dynamic_min"], rec["memory_target"]) == (
        str(gib),
        str(2 * gib),
        str(2 * gib),
    )
    bad = (str(gib), str(2 * gib), str(3 * gib), str(2 * gib))
    assert failure(api.VM.set_memory_limits, vm, *bad) == ["MEMORY_CONSTRAINT_VIOLATION_ORDER"]
    running = vm_named(api, "web-01")
    assert failure(api.VM.set_VCPUs_max, running, "8") == ["VM_BAD_POWER_STATE", running, "halted", "running"]
    assert failure(api.VM.set_actions_after_crash, vm, "explode") == ["INVALID_VALUE", "value", "explode"]
    assert failure(api.VM.set_affinity, vm, 7) == ["FIELD_TYPE_ERROR", "value"]
    api.VM.set_affinity(vm, api.host.get_all()[0])


def test_host_reboot_needs_a_disabled_host_and_comes_back(lab_factory):
    _sim, _server, api = lab_factory(power_seconds=0.2)
    host = api.host.get_by_name_label("xcp-lab-3")[0]
    assert "reboot" not in api.host.get_allowed_operations(host)
    assert failure(api.host.reboot, host) == ["HOST_NOT_DISABLED"]
    api.host.disable(host)
    assert "reboot" in api.host.get_allowed_operations(host)
    api.host.reboot(host)
    metrics = api.host.get_metrics(host)
    assert api.host_metrics.get_live(metrics) is False
    assert [v for v in api.host.get_resident_VMs(host) if not api.VM.get_is_control_domain(v)] == []
    import time

    deadline = time.monotonic() + 10
    while not api.host_metrics.get_live(metrics) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert api.host_metrics.get_live(metrics) and api.host.get_enabled(host)


def test_designate_new_master_moves_the_pool(server, api):
    new = api.host.get_by_name_label("xcp-lab-2")[0]
    api.pool.designate_new_master(new)
    # the old master is a member now: its clients are told where the pool went
    assert failure(api.VM.get_all) == ["HOST_IS_SLAVE", api_address(server, "xcp-lab-2")]
    old = XenAPI.Session(server.url)
    assert failure(old.login_with_password, "root", PASSWORD)[0] == "HOST_IS_SLAVE"
    s = XenAPI.Session(server.host_urls["xcp-lab-2"])
    s.login_with_password("root", PASSWORD)
    assert s.xenapi.pool.get_master(s.xenapi.pool.get_all()[0]) == new and len(s.xenapi.host.get_all()) == 3


def api_address(server, name: str) -> str:
    return server.host_urls[name].split("//", 1)[1].rsplit(":", 1)[0]


def _vif(api, vm, net):
    dev = api.VM.get_allowed_VIF_devices(vm)[0]
    return api.VIF.create({"VM": vm, "network": net, "device": dev, "MAC": "", "MTU": "1500", "other_config": {}})


def test_pool_migrate_needs_the_vms_networks_and_checks_the_network_option(api):
    """A managed network without PIFs is pinned to the host its running VMs are on
    (VM_REQUIRES_NETWORK elsewhere); options:network needs a PIF on the destination."""
    web1, web2, db1 = vm_named(api, "web-01"), vm_named(api, "web-02"), vm_named(api, "db-01")
    pinned = api.network.create({"name_label": "pinned", "name_description": "", "MTU": "1500", "other_config": {}})
    _vif(api, web1, pinned)
    _vif(api, web2, pinned)
    users = {api.VM.get_resident_on(web1), api.VM.get_resident_on(web2)}
    outside = [h for h in api.host.get_all() if h not in users]
    assert outside, "the lab has a host that runs neither VM"
    assert failure(api.VM.pool_migrate, web1, outside[0], {}) == ["VM_REQUIRES_NETWORK", web1, pinned]
    nowhere = api.network.create({"name_label": "no PIFs", "name_description": "", "MTU": "1500", "other_config": {}})
    dest = next(h for h in api.host.get_all() if h != api.VM.get_resident_on(db1))
    assert failure(api.VM.pool_migrate, db1, dest, {"network": nowhere}) == ["PIF_NOT_PRESENT", dest, nowhere]
    assert api.VM.get_resident_on(db1) != dest and api.VM.get_power_state(db1) == "Running"
