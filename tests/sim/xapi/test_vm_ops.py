"""VM power operations, their power-state checks, placement checks and Async tasks."""

from __future__ import annotations

import pytest
import XenAPI

from .conftest import host_named, vm_named, wait_task, wait_until

NULL = "OpaqueRef:NULL"


def failure(fn, *args) -> list[str]:
    with pytest.raises(XenAPI.Failure) as exc:
        fn(*args)
    return exc.value.details


def test_start_and_shutdown_move_memory_and_guest_metrics(api):
    vm = vm_named(api, "test-01")
    assert api.VM.get_guest_metrics(vm) == NULL
    api.VM.start(vm, False, False)
    rec = api.VM.get_record(vm)
    assert rec["power_state"] == "Running" and rec["resident_on"] != NULL
    host = rec["resident_on"]
    assert vm in api.host.get_resident_VMs(host)
    assert api.VM_guest_metrics.get_networks(rec["guest_metrics"])["0/ip"] == "127.0.10.71"
    assert "clean_shutdown" in rec["allowed_operations"] and "start" not in rec["allowed_operations"]
    metrics = api.host.get_metrics(host)
    free_running = int(api.host_metrics.get_memory_free(metrics))
    api.VM.clean_shutdown(vm)
    rec = api.VM.get_record(vm)
    assert rec["power_state"] == "Halted" and rec["resident_on"] == NULL and rec["guest_metrics"] == NULL
    needed = int(rec["memory_static_max"]) + int(rec["memory_overhead"])
    assert int(api.host_metrics.get_memory_free(metrics)) == free_running + needed


def test_bad_power_state_spells_states_as_xapi(api):
    running, halted = vm_named(api, "web-01"), vm_named(api, "test-01")
    assert failure(api.VM.start, running, False, False) == ["VM_BAD_POWER_STATE", running, "halted", "running"]
    assert failure(api.VM.clean_shutdown, halted) == ["VM_BAD_POWER_STATE", halted, "running", "halted"]
    assert failure(api.VM.hard_shutdown, halted) == [
        "VM_BAD_POWER_STATE",
        halted,
        "paused, suspended, running",
        "halted",
    ]
    assert failure(api.VM.unpause, running) == ["VM_BAD_POWER_STATE", running, "paused", "running"]


def test_suspend_resume_pause_unpause_reboot(api):
    vm = vm_named(api, "web-03")
    api.VM.pause(vm)
    assert api.VM.get_power_state(vm) == "Paused"
    api.VM.unpause(vm)
    domid = api.VM.get_domid(vm)
    api.VM.clean_reboot(vm)
    assert api.VM.get_power_state(vm) == "Running" and api.VM.get_domid(vm) != domid
    api.VM.suspend(vm)
    assert api.VM.get_power_state(vm) == "Suspended" and api.VM.get_resident_on(vm) == NULL
    api.VM.resume(vm, False, False)
    assert api.VM.get_power_state(vm) == "Running"
    api.VM.hard_reboot(vm)
    api.VM.hard_shutdown(vm)
    assert api.VM.get_power_state(vm) == "Halted"


def test_start_on_and_placement_checks(api):
    lab2, lab3 = host_named(api, "xcp-lab-2"), host_named(api, "xcp-lab-3")
    test01, web01, cache01 = vm_named(api, "test-01"), vm_named(api, "web-01"), vm_named(api, "cache-01")
    api.VM.start_on(test01, lab2, False, False)
    assert api.VM.get_resident_on(test01) == lab2
    details = failure(api.VM.assert_can_boot_here, web01, lab3)
    assert details[0] == "HOST_NOT_ENOUGH_FREE_MEMORY"
    vm = api.VM.get_record(web01)
    assert int(details[1]) == int(vm["memory_static_max"]) + int(vm["memory_overhead"])
    assert int(details[2]) == int(api.host_metrics.get_memory_free(api.host.get_metrics(lab3)))
    local_sr = api.SR.get_by_name_label("Local storage xcp-lab-1")[0]
    assert failure(api.VM.assert_can_boot_here, cache01, lab2) == ["VM_REQUIRES_SR", cache01, local_sr]
    assert api.VM.assert_can_boot_here(web01, lab2) == ""
    assert set(api.VM.get_possible_hosts(cache01)) == {host_named(api, "xcp-lab-1")}


def test_local_disk_vm_starts_on_the_host_that_sees_it(api):
    vm = vm_named(api, "legacy-01")
    api.VM.start(vm, False, False)
    assert api.VM.get_resident_on(vm) == host_named(api, "xcp-lab-3")


def test_async_start_is_a_task(api):
    vm = vm_named(api, "test-01")
    task = api.Async.VM.start(vm, False, False)
    assert task.startswith("OpaqueRef:")
    rec = wait_task(api, task)
    assert rec["status"] == "success" and rec["progress"] == 1.0 and rec["result"] == "<value></value>"
    assert rec["name_label"] == "Async.VM.start" and rec["error_info"] == []
    assert rec["finished"].value >= rec["created"].value
    again = wait_task(api, api.Async.VM.start(vm, False, False))
    assert again["status"] == "failure"
    assert again["error_info"] == ["VM_BAD_POWER_STATE", vm, "halted", "running"]


def test_control_domain_refuses_power_operations(api):
    dom0 = api.host.get_control_domain(host_named(api, "xcp-lab-1"))
    assert api.VM.get_is_control_domain(dom0) is True
    assert failure(api.VM.clean_shutdown, dom0)[0] == "OPERATION_NOT_ALLOWED"


def test_out_of_band_power_change_hook(api, sim):
    sim.set_power_state("db-01", "Halted")
    assert api.VM.get_power_state(vm_named(api, "db-01")) == "Halted"
    sim.set_power_state("db-01", "Running", host="xcp-lab-2")
    assert api.VM.get_resident_on(vm_named(api, "db-01")) == host_named(api, "xcp-lab-2")


def test_default_templates_are_listed_and_refuse_start(api):
    templates = {r["name_label"]: (ref, r) for ref, r in api.VM.get_all_records().items() if r["is_a_template"]}
    assert "Debian Bookworm 12" in templates
    ref, rec = templates["Debian Bookworm 12"]
    assert rec["is_default_template"] and rec["power_state"] == "Halted" and "start" not in rec["allowed_operations"]
    assert failure(api.VM.start, ref, False, False) == ["VM_IS_TEMPLATE", ref, "start"]


def test_slow_start_can_be_cancelled(lab_factory):
    _sim, _server, api = lab_factory(power_seconds=1.0)
    vm = vm_named(api, "test-01")
    task = api.Async.VM.start(vm, False, False)
    wait_until(lambda: api.VM.get_current_operations(vm) == {task: "start"}, what="start under way")
    assert api.task.get_allowed_operations(task) == ["cancel"]
    api.task.cancel(task)
    rec = wait_task(api, task)
    assert rec["status"] == "cancelled" and rec["error_info"] == ["TASK_CANCELLED", task]
    assert api.VM.get_power_state(vm) == "Halted" and api.VM.get_current_operations(vm) == {}
    done = wait_task(api, api.Async.VM.start(vm, False, False))
    assert done["status"] == "success" and api.VM.get_power_state(vm) == "Running"
