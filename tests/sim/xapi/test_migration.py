"""VM.pool_migrate: progress in phases, memory and residency moving, failures, cancellation."""

from __future__ import annotations

import pytest
import XenAPI

from .conftest import host_named, vm_named, wait_task, wait_until

NULL = "OpaqueRef:NULL"


def free(api, host: str) -> int:
    return int(api.host_metrics.get_memory_free(api.host.get_metrics(host)))


def needs(api, vm: str) -> int:
    rec = api.VM.get_record(vm)
    return int(rec["memory_static_max"]) + int(rec["memory_overhead"])


def test_async_pool_migrate_to_completion(api):
    vm, lab1, lab2 = vm_named(api, "web-01"), host_named(api, "xcp-lab-1"), host_named(api, "xcp-lab-2")
    free1, free2, need = free(api, lab1), free(api, lab2), needs(api, vm)
    metrics2 = api.host.get_metrics(lab2)
    token = api.event.inject("host", lab2)
    task = api.Async.VM.pool_migrate(vm, lab2, {"live": "true"})
    # while it runs: the VM lists the operation, refuses others, and the destination holds the memory
    wait_until(lambda: api.VM.get_current_operations(vm), what="pool_migrate in current_operations")
    assert list(api.VM.get_current_operations(vm).items()) == [(task, "pool_migrate")]
    with pytest.raises(XenAPI.Failure) as exc:
        api.VM.clean_shutdown(vm)
    assert exc.value.details == ["OTHER_OPERATION_IN_PROGRESS", "VM", vm, "pool_migrate", task]
    assert "pool_migrate" not in api.VM.get_allowed_operations(vm)
    assert free(api, lab2) == free2 - need
    progress: list[float] = []
    cancellable: list[bool] = []
    dest_free: list[int] = []
    status = "pending"
    while status == "pending":
        result = api.event_from(["task", "host_metrics"], token, 5.0)
        token = result["token"]
        for e in result["events"]:
            if e["ref"] == metrics2:
                dest_free.append(int(e["snapshot"]["memory_free"]))
            if e["ref"] == task:
                progress.append(e["snapshot"]["progress"])
                cancellable.append("cancel" in e["snapshot"]["allowed_operations"])
                status = e["snapshot"]["status"]
    assert status == "success"
    assert len(progress) >= 5 and progress == sorted(progress) and progress[-1] == 1.0
    assert any(0.1 < p < 0.85 for p in progress)
    assert cancellable[1] is True and cancellable[-1] is False  # cancellable, then past the point of no return
    rec = api.task.get_record(task)
    assert (
        rec["result"] == "<value></value>" and rec["error_info"] == [] and rec["name_label"] == "Async.VM.pool_migrate"
    )
    assert api.VM.get_resident_on(vm) == lab2 and api.VM.get_current_operations(vm) == {}
    assert vm in api.host.get_resident_VMs(lab2) and vm not in api.host.get_resident_VMs(lab1)
    assert free(api, lab1) == free1 + need and free(api, lab2) == free2 - need
    assert set(dest_free) <= {free2, free2 - need}  # never counted twice (reservation + resident)
    assert "pool_migrate" in api.VM.get_allowed_operations(vm)


def test_sync_pool_migrate(api):
    vm, lab2 = vm_named(api, "web-02"), host_named(api, "xcp-lab-2")
    assert api.VM.pool_migrate(vm, lab2, {}) == ""
    assert api.VM.get_resident_on(vm) == lab2


def test_not_enough_memory_on_destination(api):
    vm, lab3 = vm_named(api, "app-01"), host_named(api, "xcp-lab-3")
    available = free(api, lab3)
    rec = wait_task(api, api.Async.VM.pool_migrate(vm, lab3, {}))
    assert rec["status"] == "failure"
    assert rec["error_info"] == ["HOST_NOT_ENOUGH_FREE_MEMORY", str(needs(api, vm)), str(available)]
    assert api.VM.get_resident_on(vm) == host_named(api, "xcp-lab-2")
    with pytest.raises(XenAPI.Failure) as exc:
        api.VM.pool_migrate(vm, lab3, {})
    assert exc.value.details[0] == "HOST_NOT_ENOUGH_FREE_MEMORY"


def test_local_disk_requires_sr(api):
    vm, lab2 = vm_named(api, "cache-01"), host_named(api, "xcp-lab-2")
    sr = api.SR.get_by_name_label("Local storage xcp-lab-1")[0]
    rec = wait_task(api, api.Async.VM.pool_migrate(vm, lab2, {}))
    assert rec["status"] == "failure" and rec["error_info"] == ["VM_REQUIRES_SR", vm, sr]
    assert api.VM.get_resident_on(vm) == host_named(api, "xcp-lab-1")


def test_halted_vm_cannot_migrate(api):
    vm = vm_named(api, "test-01")
    rec = wait_task(api, api.Async.VM.pool_migrate(vm, host_named(api, "xcp-lab-2"), {}))
    assert rec["error_info"] == ["VM_BAD_POWER_STATE", vm, "running", "halted"]


def test_cancel_mid_migration_leaves_vm_on_source(lab_factory):
    _sim, _server, api = lab_factory(migration_seconds=2.0)
    vm, lab1, lab2 = vm_named(api, "db-01"), host_named(api, "xcp-lab-1"), host_named(api, "xcp-lab-2")
    free1, free2 = free(api, lab1), free(api, lab2)
    task = api.Async.VM.pool_migrate(vm, lab2, {})
    wait_until(lambda: api.task.get_progress(task) > 0.2, what="the copy phase")
    assert api.task.get_allowed_operations(task) == ["cancel"]
    api.task.cancel(task)
    rec = wait_task(api, task)
    assert rec["status"] == "cancelled" and rec["error_info"] == ["TASK_CANCELLED", task]
    assert api.VM.get_resident_on(vm) == lab1 and api.VM.get_power_state(vm) == "Running"
    assert api.VM.get_current_operations(vm) == {} and api.VM.get_scheduled_to_be_resident_on(vm) == NULL
    assert free(api, lab1) == free1 and free(api, lab2) == free2


def test_cancel_past_the_point_of_no_return_is_ignored_as_xapi_does(lab_factory):
    _sim, _server, api = lab_factory(migration_seconds=2.0)
    vm, lab1 = vm_named(api, "web-03"), host_named(api, "xcp-lab-1")
    task = api.Async.VM.pool_migrate(vm, lab1, {})
    wait_until(lambda: api.task.get_progress(task) > 0.1, what="the copy phase")
    wait_until(lambda: "cancel" not in api.task.get_allowed_operations(task), what="the final phase")
    assert api.task.get_status(task) == "pending"
    # xapi accepts the call (xenopsd logs "not cancellable") and the migration completes
    assert api.task.cancel(task) == ""
    assert "cancel" in api.task.get_current_operations(task).values()
    rec = wait_task(api, task)
    assert rec["status"] == "success" and api.VM.get_resident_on(vm) == lab1


def test_hard_shutdown_during_migration_fails_it(lab_factory):
    _sim, _server, api = lab_factory(migration_seconds=2.0)
    vm, lab2 = vm_named(api, "web-01"), host_named(api, "xcp-lab-2")
    task = api.Async.VM.pool_migrate(vm, lab2, {})
    wait_until(lambda: api.task.get_progress(task) > 0.1, what="the copy phase")
    api.VM.hard_shutdown(vm)  # xapi allows hard_shutdown alongside any other operation
    rec = wait_task(api, task)
    assert rec["status"] == "failure" and rec["error_info"][0] == "VM_BAD_POWER_STATE"
    assert api.VM.get_power_state(vm) == "Halted" and api.VM.get_resident_on(vm) == NULL
