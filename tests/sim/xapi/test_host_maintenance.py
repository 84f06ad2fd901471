"""Host maintenance through the real XenAPI SDK: disable/enable, evacuation planning and evacuation,
host allowed/current operations, and the VM_MIGRATED message a migration leaves."""

from __future__ import annotations

import json
import time
import urllib.request
import xmlrpc.client
from datetime import UTC, datetime, timedelta

import pytest
import XenAPI

from .conftest import host_named, vm_named, wait_task, wait_until

NULL = "OpaqueRef:NULL"
ENABLED_OPS = ["provision", "evacuate", "vm_start", "vm_resume", "vm_migrate", "enable"]
DISABLED_OPS = [
    "provision",
    "evacuate",
    "shutdown",
    "reboot",
    "vm_start",
    "vm_resume",
    "vm_migrate",
    "apply_updates",
    "enable",
]


def sr_named(api, name: str) -> str:
    refs = api.SR.get_by_name_label(name)
    assert len(refs) == 1, refs
    return refs[0]


def guests_on(api, host: str) -> list[str]:
    return [vm for vm in api.host.get_resident_VMs(host) if not api.VM.get_is_control_domain(vm)]


def failure(call, *args) -> list[str]:
    with pytest.raises(XenAPI.Failure) as exc:
        call(*args)
    return exc.value.details


def test_disabled_host_refuses_migrations_and_starts(api):
    """HOST_DISABLED [host] from Xapi_vm_helpers.assert_host_is_enabled (ocaml/xapi/xapi_vm_helpers.ml),
    checked by assert_can_boot_here for pool_migrate, start_on and VM.assert_can_boot_here;
    disable/enable as ocaml/xapi/xapi_host.ml (no-ops when already so) and the allowed operations
    of ocaml/xapi/xapi_host_helpers.ml valid_operations (reboot/shutdown need HOST_NOT_DISABLED)."""
    web, lab2 = vm_named(api, "web-01"), host_named(api, "xcp-lab-2")
    assert api.host.get_allowed_operations(lab2) == ENABLED_OPS
    api.host.disable(lab2)
    api.host.disable(lab2)  # already disabled: nothing happens
    assert api.host.get_enabled(lab2) is False
    assert api.host.get_allowed_operations(lab2) == DISABLED_OPS
    assert failure(api.VM.pool_migrate, web, lab2, {"live": "true"}) == ["HOST_DISABLED", lab2]
    rec = wait_task(api, api.Async.VM.pool_migrate(web, lab2, {}))
    assert rec["status"] == "failure" and rec["error_info"] == ["HOST_DISABLED", lab2]
    assert failure(api.VM.assert_can_boot_here, web, lab2) == ["HOST_DISABLED", lab2]
    assert failure(api.VM.start_on, vm_named(api, "test-01"), lab2, False, False) == ["HOST_DISABLED", lab2]
    assert lab2 not in api.VM.get_possible_hosts(web)
    assert api.VM.get_resident_on(web) == host_named(api, "xcp-lab-1")
    # a VM already running there may still "migrate" to its own host (a local live migration)
    api.VM.assert_can_boot_here(vm_named(api, "web-03"), lab2)
    api.host.enable(lab2)
    assert api.host.get_enabled(lab2) is True
    assert api.host.get_allowed_operations(lab2) == ENABLED_OPS
    assert api.host.get_current_operations(lab2) == {}
    api.VM.pool_migrate(web, lab2, {})
    assert api.VM.get_resident_on(web) == lab2


def test_disable_takes_the_optional_auto_enable(api):
    """host.disable's auto_enable parameter (ocaml/idl/datamodel_host.ml, 25.31.0, default true) may
    be left out, as every older client does."""
    lab3 = host_named(api, "xcp-lab-3")
    api.host.disable(lab3, False)
    assert api.host.get_enabled(lab3) is False
    api.host.enable(lab3)
    assert api.host.get_enabled(lab3) is True


def test_dead_host_is_not_live(sim, api):
    """HOST_NOT_LIVE [] (Xapi_vm_helpers.assert_host_is_live, ocaml/xapi/xapi_vm_helpers.ml) comes
    before the enabled check."""
    lab2 = host_named(api, "xcp-lab-2")
    api.host.disable(lab2)
    sim.set_host_live("xcp-lab-2", False)
    assert api.host_metrics.get_live(api.host.get_metrics(lab2)) is False
    web = vm_named(api, "web-01")
    assert failure(api.VM.assert_can_boot_here, web, lab2) == ["HOST_NOT_LIVE"]
    assert failure(api.VM.pool_migrate, web, lab2, {}) == ["HOST_NOT_LIVE"]
    sim.set_host_live("xcp-lab-2", True)
    assert failure(api.VM.assert_can_boot_here, web, lab2) == ["HOST_DISABLED", lab2]


def test_vms_which_prevent_evacuation_name_a_local_disk(api):
    """compute_evacuation_plan_no_wlb and get_vms_which_prevent_evacuation (ocaml/xapi/xapi_host.ml):
    a VM that cannot boot on some other enabled host keeps the error assert_can_boot_here raised,
    here VM_REQUIRES_SR [vm, sr] (ocaml/xapi/xapi_vm_helpers.ml assert_can_see_SRs);
    assert_can_evacuate joins them into CANNOT_EVACUATE_HOST ["CODE,params|..."]."""
    lab1, lab3 = host_named(api, "xcp-lab-1"), host_named(api, "xcp-lab-3")
    cache, local = vm_named(api, "cache-01"), sr_named(api, "Local storage xcp-lab-1")
    assert api.host.get_vms_which_prevent_evacuation(lab1) == {cache: ["VM_REQUIRES_SR", cache, local]}
    assert failure(api.host.assert_can_evacuate, lab1) == ["CANNOT_EVACUATE_HOST", f"VM_REQUIRES_SR,{cache},{local}"]
    assert api.host.get_vms_which_prevent_evacuation(lab3) == {}
    api.host.assert_can_evacuate(lab3)


def test_evacuation_plan_runs_out_of_memory_and_hosts(api):
    """xapi_host.ml's plan: memory packed biggest VM first (Binpack.biggest_fit_decreasing,
    ocaml/xapi/binpack.ml); what fits nowhere gets HOST_NOT_ENOUGH_FREE_MEMORY [vm] (the VM only, not
    the byte counts of the start check); with no other enabled host, NO_HOSTS_AVAILABLE [vm]."""
    lab1, lab2, lab3 = (host_named(api, f"xcp-lab-{i}") for i in (1, 2, 3))
    api.host.disable(lab1)  # only the nearly full xcp-lab-3 is left to take xcp-lab-2's VMs
    blockers = api.host.get_vms_which_prevent_evacuation(lab2)
    monitor = vm_named(api, "monitor-01")
    assert blockers[monitor] == ["VM_REQUIRES_SR", monitor, sr_named(api, "Local storage xcp-lab-2")]
    short = [vm for vm, error in blockers.items() if error[0] == "HOST_NOT_ENOUGH_FREE_MEMORY"]
    assert short and all(blockers[vm] == ["HOST_NOT_ENOUGH_FREE_MEMORY", vm] for vm in short)
    api.host.disable(lab3)
    blockers = api.host.get_vms_which_prevent_evacuation(lab2)
    assert blockers == {vm: ["NO_HOSTS_AVAILABLE", vm] for vm in guests_on(api, lab2)}


def test_evacuate_moves_every_vm_off_in_batches(api):
    """Host.evacuate (ocaml/xapi/xapi_host.ml evacuate, under with_host_operation `evacuate` from
    ocaml/xapi/message_forwarding.ml): Async.VM.pool_migrate tasks, evacuate_batch_size at a time,
    destroyed when done; the host lists `evacuate` meanwhile, so VM-creating operations
    (provision, vm_resume, vm_migrate) are not allowed on it (xapi_host_helpers.ml valid_operations),
    and every destination lists `vm_migrate` while a VM arrives (allocate_vm_to_host)."""
    lab3 = host_named(api, "xcp-lab-3")
    moving = guests_on(api, lab3)
    assert len(moving) == 2
    api.host.disable(lab3)  # what a client does first, so nothing starts there meanwhile
    task = api.Async.host.evacuate(lab3, NULL, "1")
    wait_until(lambda: api.host.get_current_operations(lab3), what="evacuate in current_operations")
    assert api.host.get_current_operations(lab3) == {task: "evacuate"}
    allowed = api.host.get_allowed_operations(lab3)
    assert "evacuate" in allowed and not {"provision", "vm_resume", "vm_migrate"} & set(allowed)
    most_at_once, arriving = 0, set()
    while api.task.get_status(task) == "pending":
        migrations = [
            t
            for t, rec in api.task.get_all_records().items()
            if rec["name_label"] == "Async.VM.pool_migrate" and rec["status"] == "pending"
        ]
        most_at_once = max(most_at_once, len(migrations))
        for host in api.host.get_all():
            ops = set(api.host.get_current_operations(host).values())
            if "vm_migrate" in ops:
                arriving.add(host)
        time.sleep(0.05)
    rec = api.task.get_record(task)
    assert rec["status"] == "success", rec["error_info"]
    assert rec["progress"] == 1.0
    assert guests_on(api, lab3) == []
    assert all(api.VM.get_resident_on(vm) != lab3 for vm in moving)
    assert most_at_once == 1  # evacuate_batch_size 1: one migration at a time
    assert arriving and lab3 not in arriving
    assert api.host.get_current_operations(lab3) == {}
    assert api.host.get_allowed_operations(lab3) == DISABLED_OPS
    assert all(api.host.get_current_operations(h) == {} for h in api.host.get_all())
    names = [r["name_label"] for r in api.task.get_all_records().values()]
    assert "Async.VM.pool_migrate" not in names  # evacuate destroys its migration tasks


def test_evacuate_all_at_once_by_default(api):
    """evacuate_batch_size may be left out (ocaml/idl/datamodel_host.ml: network defaults to NULL,
    the batch size to 0, meaning xapi.conf's evacuation-batch-size, 10)."""
    lab3 = host_named(api, "xcp-lab-3")
    api.host.evacuate(lab3)
    assert guests_on(api, lab3) == []


def test_evacuate_refused_when_something_prevents_it(api):
    """xapi_host.ml evacuate raises the first VM's plan error as it is (not CANNOT_EVACUATE_HOST)
    before moving anything."""
    lab1 = host_named(api, "xcp-lab-1")
    before = sorted(guests_on(api, lab1))
    cache, local = vm_named(api, "cache-01"), sr_named(api, "Local storage xcp-lab-1")
    assert failure(api.host.evacuate, lab1) == ["VM_REQUIRES_SR", cache, local]
    rec = wait_task(api, api.Async.host.evacuate(lab1, NULL, "0"))
    assert rec["status"] == "failure" and rec["error_info"] == ["VM_REQUIRES_SR", cache, local]
    assert sorted(guests_on(api, lab1)) == before
    assert api.host.get_current_operations(lab1) == {}


def test_evacuate_over_a_network_without_an_address(api):
    """With a `network`, every destination needs an addressed PIF on it
    (Xapi_network_attach_helpers.assert_valid_ip_configuration_on_network_for_host,
    ocaml/xapi/xapi_network_attach_helpers.ml): INTERFACE_HAS_NO_IP [pif] on the VM network."""
    lab3 = host_named(api, "xcp-lab-3")
    vm_net = api.network.get_by_name_label("VM network")[0]
    details = failure(api.host.evacuate, lab3, vm_net, "0")
    assert details[0] == "INTERFACE_HAS_NO_IP" and api.PIF.get_network(details[1]) == vm_net
    assert len(guests_on(api, lab3)) == 2
    management = api.network.get_by_name_label("Pool-wide network associated with eth0")[0]
    api.host.evacuate(lab3, management, "0")
    assert guests_on(api, lab3) == []


def test_migration_to_an_evacuating_host_is_refused(lab_factory):
    """allocate_vm_to_host (ocaml/xapi/message_forwarding.ml) checks `vm_migrate` on the destination:
    while it evacuates, OTHER_OPERATION_IN_PROGRESS ["host", host, "evacuate", task]
    (ocaml/xapi/xapi_host_helpers.ml valid_operations)."""
    _, _, api = lab_factory(migration_seconds=4.0)  # time enough to look while the second VM moves
    lab3 = host_named(api, "xcp-lab-3")
    task = api.Async.host.evacuate(lab3, NULL, "1")
    # once the first VM has left there is memory for web-01; the second is still on its way
    wait_until(lambda: len(guests_on(api, lab3)) == 1, what="the first VM to leave")
    assert api.host.get_current_operations(lab3) == {task: "evacuate"}
    web = vm_named(api, "web-01")
    api.VM.assert_can_boot_here(web, lab3)  # enabled, sees the SR, has the memory
    assert failure(api.VM.pool_migrate, web, lab3, {}) == [
        "OTHER_OPERATION_IN_PROGRESS",
        "host",
        lab3,
        "evacuate",
        task,
    ]
    wait_task(api, task)
    assert api.VM.get_current_operations(web) == {}


def test_migration_lists_vm_migrate_on_the_destination(lab_factory):
    """message_forwarding.ml pool_migrate reserves the destination with host_op `vm_migrate`
    (allocate_vm_to_host); the source host gets no operation. While it is there the destination
    may not evacuate (OTHER_OPERATION_IN_PROGRESS naming vm_migrate)."""
    _, _, api = lab_factory(migration_seconds=4.0)
    web, lab1, lab2 = vm_named(api, "web-01"), host_named(api, "xcp-lab-1"), host_named(api, "xcp-lab-2")
    task = api.Async.VM.pool_migrate(web, lab2, {})
    wait_until(lambda: api.host.get_current_operations(lab2), what="vm_migrate on the destination")
    assert api.host.get_current_operations(lab2) == {task: "vm_migrate"}
    assert api.host.get_current_operations(lab1) == {}
    allowed = api.host.get_allowed_operations(lab2)
    assert "vm_migrate" in allowed and "evacuate" not in allowed
    assert failure(api.host.evacuate, lab2) == ["OTHER_OPERATION_IN_PROGRESS", "host", lab2, "vm_migrate", task]
    assert wait_task(api, task)["status"] == "success"
    assert api.host.get_current_operations(lab2) == {}
    assert api.host.get_allowed_operations(lab2) == ENABLED_OPS


def test_migration_leaves_a_vm_migrated_message(api):
    """message_forwarding.ml pool_migrate: create_vm_message with Api_messages.vm_migrated
    (ocaml/xapi-consts/api_messages.ml: "VM_MIGRATED", priority 5), class VM, the VM's uuid, body
    "VM '%s' (uuid: %s) migrated from host '%s' (uuid: %s) to host '%s' (uuid: %s)"; read back with
    message.get_all_records / get_since / get (ocaml/xapi/xapi_message.ml)."""
    web, lab1, lab2 = vm_named(api, "web-01"), host_named(api, "xcp-lab-1"), host_named(api, "xcp-lab-2")
    assert api.message.get_all_records() == {}
    before = datetime.now(UTC) - timedelta(seconds=2)
    api.VM.pool_migrate(web, lab2, {})
    records = api.message.get_all_records()
    assert len(records) == 1
    ref, msg = next(iter(records.items()))
    vm_uuid = api.VM.get_uuid(web)
    assert msg["name"] == "VM_MIGRATED" and msg["priority"] == "5"
    assert msg["cls"] == "VM" and msg["obj_uuid"] == vm_uuid
    assert msg["body"] == (
        f"VM 'web-01' (uuid: {vm_uuid}) migrated from host 'xcp-lab-1' (uuid: {api.host.get_uuid(lab1)}) "
        f"to host 'xcp-lab-2' (uuid: {api.host.get_uuid(lab2)})"
    )
    assert isinstance(msg["timestamp"], xmlrpc.client.DateTime)
    stamp = before.strftime("%Y%m%dT%H:%M:%SZ")
    assert list(api.message.get_since(xmlrpc.client.DateTime(stamp))) == [ref]
    later = (datetime.now(UTC) + timedelta(minutes=1)).strftime("%Y%m%dT%H:%M:%SZ")
    assert api.message.get_since(xmlrpc.client.DateTime(later)) == {}
    assert list(api.message.get("VM", vm_uuid, xmlrpc.client.DateTime(stamp))) == [ref]
    assert api.message.get_record(ref)["uuid"] == msg["uuid"] == api.message.get_record(ref)["uuid"]
    assert api.message.get_by_uuid(msg["uuid"]) == ref
    assert api.message.get_all() == [ref]
    api.message.destroy(ref)
    assert api.message.get_all_records() == {}


def test_failed_migration_leaves_no_message(api):
    """create_vm_message runs only after the migration returned (message_forwarding.ml)."""
    lab2 = host_named(api, "xcp-lab-2")
    api.host.disable(lab2)
    failure(api.VM.pool_migrate, vm_named(api, "web-01"), lab2, {})
    assert api.message.get_all_records() == {}


def test_uncooperative_resident_vms_is_always_empty(api):
    """Deprecated since Tampa; ocaml/xapi/xapi_host.ml get_uncooperative_resident_VMs returns []."""
    assert api.host.get_uncooperative_resident_VMs(host_named(api, "xcp-lab-1")) == []


def test_event_from_delivers_messages(api):
    """ocaml/xapi/xapi_event.ml: messages are not in the database; a subscription covering
    "message" gets an `add` (snapshot: the message record) for each new one and a `del` for each
    destroyed, the token's second half tracking them (ocaml/xapi/xapi_message.ml gives each
    message a database generation; get_since_for_events returns the newest as the new "since")."""
    token = api.event_from(["message"], "", 0.0)["token"]
    assert token.endswith(",00000000000000000000")  # no message yet: stays as given
    api.VM.pool_migrate(vm_named(api, "web-01"), host_named(api, "xcp-lab-2"), {})
    result = api.event_from(["message"], token, 5.0)
    [event] = result["events"]
    assert event["class"] == "message" and event["operation"] == "add"
    assert event["snapshot"]["name"] == "VM_MIGRATED" and event["ref"] in api.message.get_all()
    assert int(result["token"].split(",")[1]) > int(token.split(",")[1])
    assert api.event_from(["message"], result["token"], 0.0)["events"] == []  # each message once
    api.message.destroy(event["ref"])
    [gone] = api.event_from(["*"], result["token"], 5.0)["events"]
    assert gone["operation"] == "del" and gone["ref"] == event["ref"] and "snapshot" not in gone
    vm_events = api.event_from(["vm"], "", 0.0)
    assert all(e["class"] == "vm" for e in vm_events["events"])
    assert vm_events["token"].endswith(",00000000000000000000")  # not subscribed: stays 0, as in xapi
    assert "message" not in vm_events["valid_ref_counts"]


def test_paused_vm_prevents_evacuation(api):
    """compute_evacuation_plan_no_wlb checks Xapi_vm_lifecycle.get_operation_error for pool_migrate
    (ocaml/xapi/xapi_host.ml): a paused VM cannot be live-migrated, VM_BAD_POWER_STATE."""
    lab3 = host_named(api, "xcp-lab-3")
    build = vm_named(api, "build-01")
    api.VM.pause(build)
    paused = ["VM_BAD_POWER_STATE", build, "running", "paused"]
    assert api.host.get_vms_which_prevent_evacuation(lab3) == {build: paused}
    assert failure(api.host.evacuate, lab3) == paused


def test_messages_over_jsonrpc(server, session):
    """JSON-RPC carries dateTime parameters as strings: message.get_since accepts xapi's
    "20261203T07:41:28Z" and RFC 3339 (ocaml/idl/datamodel.ml: "When the timezone is missing,
    UTC is assumed")."""
    api = session.xenapi

    def call(method: str, *params: object) -> object:
        body = json.dumps({"jsonrpc": "2.0", "method": method, "params": list(params), "id": 1}).encode()
        req = urllib.request.Request(server.url + "/jsonrpc", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())["result"]

    api.VM.pool_migrate(vm_named(api, "web-01"), host_named(api, "xcp-lab-2"), {})
    for since in ("19700101T00:00:00Z", "1970-01-01T00:00:00", "2000-01-01T00:00:00+00:00"):
        [msg] = call("message.get_since", session._session, since).values()
        assert msg["name"] == "VM_MIGRATED" and msg["priority"] == 5  # a number over JSON-RPC
    assert call("message.get_since", session._session, "29990101T00:00:00Z") == {}
