"""Further VM calls management tools make: checkpoint and revert, power_state_reset,
update_allowed_operations, live VCPU and memory changes, BIOS strings, sysrq/triggers, and the
memory figures (compute_memory_overhead, maximise_memory), as xapi_vm.ml answers them."""

from __future__ import annotations

from . import datamodel, devices, errors, lifecycle, ops
from .api_vm_copies import _copy
from .db import NULL_REF
from .registry import Context, api


@api("VM.checkpoint", "vm", "new_name")
def checkpoint(ctx: Context, vm: str, new_name: str) -> str:
    """A snapshot that keeps the memory image: the snapshot is Suspended (xapi_vm_clone's
    new_power_state for Disk_op_checkpoint of a running VM)."""
    with ctx.db.lock:
        lifecycle.assert_allowed(ctx.db, vm, "checkpoint")
        ref = _copy(ctx, vm, new_name, "snapshot")
        if ctx.db.get("VM", vm)["power_state"] in ("Running", "Suspended"):
            ctx.db.set("VM", ref, power_state="Suspended")
            lifecycle.update_allowed(ctx.db, ref)
        return ref


_REVERTED = (
    "VCPUs_max",
    "VCPUs_at_startup",
    "VCPUs_params",
    "memory_static_max",
    "memory_dynamic_max",
    "memory_dynamic_min",
    "memory_static_min",
    "platform",
    "HVM_boot_policy",
    "HVM_boot_params",
    "PV_args",
    "other_config",
    "domain_type",
)


@api("VM.revert", "snapshot")
def revert(ctx: Context, snapshot: str) -> None:
    """Xapi_vm_snapshot.revert: the snapshotted VM takes back the snapshot's configuration and
    copies of its disks and NICs, halted (suspended when reverting to a checkpoint); its
    current VBDs and VIFs go (their disks stay, as after VM.destroy), the snapshot stays."""
    db = ctx.db
    with db.lock:
        lifecycle.assert_allowed(db, snapshot, "revert")
        snap = db.get("VM", snapshot)
        vm = snap["snapshot_of"]
        if vm == NULL_REF or not db.exists("VM", vm):
            raise errors.XapiError("VM_REVERT_FAILED", snapshot, vm)
        if db.get("VM", vm)["power_state"] != "Halted":
            ops.make_nonresident(ctx.pool, vm, "Halted")
        for vbd in list(db.get("VM", vm)["VBDs"]):
            devices.destroy_vbd(db, vbd)
        for vif in list(db.get("VM", vm)["VIFs"]):
            devices.destroy_vif(db, vif)
        for vbd in snap["VBDs"]:
            vdi = db.get("VBD", vbd)["VDI"]
            devices.copy_vbd(db, vbd, vm, vdi if vdi == NULL_REF else devices.copy_vdi(db, vdi))
        for vif in snap["VIFs"]:
            devices.copy_vif(db, vif, vm, preserve_mac=True)
        state = "Suspended" if snap["power_state"] == "Suspended" else "Halted"
        db.set("VM", vm, parent=snapshot, power_state=state, **{k: snap[k] for k in _REVERTED})
        lifecycle.update_allowed(db, vm)


@api("VM.power_state_reset", "vm")
def power_state_reset(ctx: Context, vm: str) -> None:
    """Forget a VM's domain (after its host died): Halted, nothing resident."""
    with ctx.db.lock:
        lifecycle.assert_allowed(ctx.db, vm, "power_state_reset")
        if ctx.db.get("VM", vm)["power_state"] != "Halted":
            ops.make_nonresident(ctx.pool, vm, "Halted")


@api("VM.update_allowed_operations", "self")
def update_allowed_operations(ctx: Context, self: str) -> None:
    lifecycle.update_allowed(ctx.db, self)


@api("VM.set_VCPUs_number_live", "self", "nvcpu")
def set_vcpus_number_live(ctx: Context, self: str, nvcpu: object) -> None:
    n = datamodel.coerce("int", nvcpu, "VM", "nvcpu")
    with ctx.db.lock:
        lifecycle.assert_allowed(ctx.db, self, "changing_VCPUs_live")
        rec = ctx.db.get("VM", self)
        if not 1 <= n <= rec["VCPUs_max"]:
            raise errors.XapiError("INVALID_VALUE", "nvcpu", n)
        ctx.db.set("VM", self, VCPUs_at_startup=n)
        if ctx.db.exists("VM_metrics", rec["metrics"]):
            ctx.db.set("VM_metrics", rec["metrics"], VCPUs_number=n)


@api("VM.set_memory_target_live", "self", "target")
def set_memory_target_live(ctx: Context, self: str, target: object) -> None:
    value = datamodel.coerce("int", target, "VM", "target")
    with ctx.db.lock:
        rec = ctx.db.get("VM", self)
        if not rec["memory_dynamic_min"] <= value <= rec["memory_dynamic_max"]:
            raise errors.XapiError("MEMORY_CONSTRAINT_VIOLATION_ORDER")
        ctx.db.set("VM", self, memory_target=value)


@api("VM.wait_memory_target_live", "self")
def wait_memory_target_live(ctx: Context, self: str) -> None:
    ctx.db.get("VM", self)  # the simulated balloon reaches its target at once


@api("VM.get_cooperative", "self")
def get_cooperative(ctx: Context, self: str) -> bool:
    ctx.db.get("VM", self)
    return True  # deprecated in xapi: always true


@api("VM.compute_memory_overhead", "vm")
def compute_memory_overhead(ctx: Context, vm: str) -> int:
    return int(ctx.db.field("VM", vm, "memory_overhead"))


@api("VM.maximise_memory", "self", "total", "approximate")
def maximise_memory(ctx: Context, self: str, total: object, approximate: bool) -> int:
    """The largest static_max whose memory and overhead fit in `total` bytes."""
    budget: int = datamodel.coerce("int", total, "VM", "total")
    return max(budget - int(ctx.db.field("VM", self, "memory_overhead")), 0)


@api("VM.copy_bios_strings", "vm", "host")
def copy_bios_strings(ctx: Context, vm: str, host: str) -> None:
    with ctx.db.lock:
        rec = ctx.db.get("VM", vm)
        if rec["bios_strings"]:
            raise errors.XapiError("VM_BIOS_STRINGS_ALREADY_SET")
        ctx.db.set("VM", vm, bios_strings=dict(ctx.db.get("host", host)["bios_strings"]))


def _running_op(ctx: Context, vm: str, op: str) -> None:
    with ctx.db.lock:
        lifecycle.assert_allowed(ctx.db, vm, op)


@api("VM.send_sysrq", "vm", "key")
def send_sysrq(ctx: Context, vm: str, key: str) -> None:
    _running_op(ctx, vm, "send_sysrq")


@api("VM.send_trigger", "vm", "trigger")
def send_trigger(ctx: Context, vm: str, trigger: str) -> None:
    _running_op(ctx, vm, "send_trigger")


@api("VM.snapshot_with_quiesce", "vm", "new_name")
def snapshot_with_quiesce(ctx: Context, vm: str, new_name: str) -> str:
    with ctx.db.lock:
        lifecycle.assert_allowed(ctx.db, vm, "snapshot_with_quiesce")  # VSS is gone: always refused
    raise errors.XapiError("VM_SNAPSHOT_WITH_QUIESCE_NOT_SUPPORTED", vm)


@api("VM.add_to_NVRAM", "self", "key", "value")
def add_to_nvram(ctx: Context, self: str, key: str, value: str) -> None:
    with ctx.db.lock:
        lifecycle.assert_allowed(ctx.db, self, "changing_NVRAM")
        current = ctx.db.field("VM", self, "NVRAM")
        ctx.db.set("VM", self, NVRAM={**current, str(key): str(value)})


@api("VM.remove_from_NVRAM", "self", "key")
def remove_from_nvram(ctx: Context, self: str, key: str) -> None:
    with ctx.db.lock:
        lifecycle.assert_allowed(ctx.db, self, "changing_NVRAM")
        current = ctx.db.field("VM", self, "NVRAM")
        ctx.db.set("VM", self, NVRAM={k: v for k, v in current.items() if k != key})


@api("VM.add_to_VCPUs_params_live", "self", "key", "value")
def add_to_vcpus_params_live(ctx: Context, self: str, key: str, value: str) -> None:
    with ctx.db.lock:
        state = ctx.db.field("VM", self, "power_state")
        if state != "Running":
            raise errors.vm_bad_power_state(self, ["Running"], state)
        current = ctx.db.field("VM", self, "VCPUs_params")
        ctx.db.set("VM", self, VCPUs_params={**current, str(key): str(value)})


@api("VM.set_shadow_multiplier_live", "self", "multiplier")
def set_shadow_multiplier_live(ctx: Context, self: str, multiplier: object) -> None:
    value = datamodel.coerce("float", multiplier, "VM", "multiplier")
    with ctx.db.lock:
        lifecycle.assert_allowed(ctx.db, self, "changing_shadow_memory_live")
        if value < 1.0:
            raise errors.XapiError("INVALID_VALUE", "multiplier", value)
        ctx.db.set("VM", self, HVM_shadow_multiplier=value)


@api("VM.restart_device_models", "self")
def restart_device_models(ctx: Context, self: str) -> None:
    """xapi_vm.restart_device_models: a live migration to the host the VM runs on (new domain,
    new device model), through pool_migrate's checks and operations."""
    from . import migrate

    with ctx.db.lock:
        rec = ctx.db.get("VM", self)
        if rec["power_state"] != "Running":
            raise errors.XapiError("VM_BAD_POWER_STATE", self, "running", rec["power_state"].lower())
        host = rec["resident_on"]
    migrate.pool_migrate(ctx.pool, ctx.task, self, host, {"live": "true"})
