"""Which VM operations are allowed when: xapi_vm_lifecycle.ml's check_operation_error, in its
order (blocked, power state, concurrency, template, snapshot, provision/revert, mobility,
control domain, quiesce, appliance/policies, system domain, VTPM), and update_allowed_operations
(every vm_operations value but the ignored ones)."""

from __future__ import annotations

from typing import Any

from . import datamodel, errors
from .db import NULL_REF, Database

_ALL = ("Halted", "Paused", "Suspended", "Running")
# allowed_power_states, in xapi's order (the order appears in VM_BAD_POWER_STATE)
POWER: dict[str, tuple[str, ...]] = {
    "import": (),
    **dict.fromkeys(("changing_VCPUs", "changing_static_range", "changing_memory_limits"), ("Halted",)),
    **dict.fromkeys(
        (
            "changing_shadow_memory",
            "changing_NVRAM",
            "make_into_template",
            "provision",
            "start",
            "start_on",
            "create_vtpm",
        ),
        ("Halted",),
    ),
    "unpause": ("Paused",),
    **dict.fromkeys(("csvm", "resume", "resume_on"), ("Suspended",)),
    **dict.fromkeys(
        (
            "awaiting_memory_live",
            "call_plugin",
            "clean_reboot",
            "clean_shutdown",
            "changing_memory_live",
            "changing_shadow_memory_live",
            "changing_VCPUs_live",
            "data_source_op",
            "pause",
            "pool_migrate",
            "send_sysrq",
            "send_trigger",
            "snapshot_with_quiesce",
            "sysprep",
            "suspend",
        ),
        ("Running",),
    ),
    "changing_dynamic_range": ("Halted", "Running"),
    **dict.fromkeys(("clone", "copy"), ("Halted",)),
    **dict.fromkeys(("create_template", "destroy", "export"), ("Halted", "Suspended")),
    "hard_reboot": ("Paused", "Running"),
    **dict.fromkeys(("checkpoint", "get_boot_record", "shutdown", "hard_shutdown"), ("Paused", "Suspended", "Running")),
    "migrate_send": ("Halted", "Suspended", "Running"),
    **dict.fromkeys(
        (
            "assert_operation_valid",
            "metadata_export",
            "power_state_reset",
            "revert",
            "reverting",
            "snapshot",
            "update_allowed_operations",
            "query_services",
        ),
        _ALL,
    ),
}
SETTER_POWER = POWER  # the setters' checks use the same table (changing_VCPUs, ...)
_TEMPLATE_OK = {
    "changing_dynamic_range",
    "changing_static_range",
    "changing_memory_limits",
    "changing_shadow_memory",
    "changing_VCPUs",
    "changing_NVRAM",
    "clone",
    "copy",
    "export",
    "metadata_export",
    "provision",
}
_SNAPSHOT_OK = {"revert", "clone", "copy", "export", "destroy", "hard_shutdown", "metadata_export"}
_CONTROL_DOMAIN_OK = {
    "data_source_op",
    "changing_memory_live",
    "awaiting_memory_live",
    "metadata_export",
    "changing_dynamic_range",
    "changing_memory_limits",
    "changing_static_range",
    "start",
    "start_on",
    "changing_VCPUs",
    "destroy",
}
_IGNORED = {
    "create_template",
    "power_state_reset",
    "csvm",
    "get_boot_record",
    "send_sysrq",
    "send_trigger",
    "query_services",
    "shutdown",
    "call_plugin",
    "changing_memory_live",
    "awaiting_memory_live",
    "changing_memory_limits",
    "changing_shadow_memory_live",
    "changing_VCPUs",
    "assert_operation_valid",
    "data_source_op",
    "update_allowed_operations",
    "import",
    "reverting",
}
_IMMOBILE_OPS = {"suspend", "checkpoint", "pool_migrate", "migrate_send"}


def _operations() -> tuple[str, ...]:
    return datamodel.enums("VM").get("vm_operations", tuple(POWER))


def allowable() -> list[str]:
    # update_allowed_operations folds with op :: accu, so XAPI lists them in reverse enum order
    return [op for op in reversed(_operations()) if op not in _IGNORED]


def allowed_concurrently(op: str, current: list[str]) -> bool:
    for group in (("clone", "copy", "export"), ("snapshot", "checkpoint"), ("get_boot_record",)):
        if op in group and all(o in group for o in current):
            return True
    if op == "hard_shutdown":
        return "hard_shutdown" not in current
    if op == "hard_reboot":
        return not any(o in ("hard_shutdown", "hard_reboot") for o in current)
    pairs = {("snapshot_with_quiesce", "snapshot"), ("migrate_send", "metadata_export")}
    pairs |= {("migrate_send", "clean_shutdown"), ("migrate_send", "clean_reboot")}
    return len(current) == 1 and (current[0], op) in pairs


def _platform_true(rec: dict[str, Any], key: str) -> bool:
    return str(rec["platform"].get(key, "false")).lower() in ("1", "true")


def _inputs(db: Database, rec: dict[str, Any]) -> tuple[object, ...]:
    """Everything the checks read besides the operation: the cache key of update_allowed."""
    metrics = db.tables["VM_metrics"].get(rec["metrics"])
    nomigrate = metrics["nomigrate"] if metrics else _platform_true(rec, "nomigrate")
    nested = metrics["nested_virt"] if metrics else _platform_true(rec, "nested-virt")
    default_template = rec["is_default_template"] or rec["other_config"].get("default_template") in ("true", "1")
    return (
        rec["power_state"],
        rec["is_a_template"],
        rec["is_a_snapshot"],
        rec["is_control_domain"],
        rec["is_control_domain"] and rec["domid"] == 0,
        default_template,
        nomigrate,
        nested,
        rec["other_config"].get("is_system_domain") in ("true", "1"),
        len(rec["VTPMs"]),
        bool(rec["attached_PCIs"] or rec["VGPUs"] or rec["VUSBs"]),
    )


def _check_static(vm: str, op: str, inputs: tuple[Any, ...]) -> errors.XapiError | None:
    state = inputs[0]
    if state not in POWER.get(op, ()):
        return errors.vm_bad_power_state(vm, list(POWER.get(op, ())), state)
    return _after_power(vm, op, inputs)


def _after_power(vm: str, op: str, inputs: tuple[Any, ...], strict: bool = True) -> errors.XapiError | None:
    state, template, snapshot, control, dom0, default_template, nomigrate, nested, system, vtpms, devices = inputs
    if template and not snapshot and op not in _TEMPLATE_OK:
        if not (op in ("destroy", "migrate_send") and not default_template):
            return errors.XapiError("VM_IS_TEMPLATE", vm, op)
    if snapshot and op not in _SNAPSHOT_OK:
        return errors.XapiError("VM_IS_SNAPSHOT", vm, op)
    if op == "provision" and not template:
        return errors.XapiError("PROVISION_ONLY_ALLOWED_ON_TEMPLATE")
    if op == "revert" and not snapshot:
        return errors.XapiError("REVERT_ONLY_ALLOWED_ON_SNAPSHOT")
    if op in _IMMOBILE_OPS and (nomigrate or nested) and strict:  # is_mobile: always, if not strict
        return errors.XapiError("VM_IS_IMMOBILE", vm)
    if op == "changing_dynamic_range" and nested and strict:
        return errors.XapiError("VM_IS_USING_NESTED_VIRT", vm)
    if op in ("changing_VCPUs", "destroy") and dom0:
        return errors.operation_not_allowed("This operation is not allowed on dom0")
    if control and op not in _CONTROL_DOMAIN_OK:
        return errors.operation_not_allowed("This operation is not allowed on a control domain")
    if op == "snapshot_with_quiesce":
        return errors.XapiError("VM_SNAPSHOT_WITH_QUIESCE_NOT_SUPPORTED", vm)
    if devices and op in _IMMOBILE_OPS:
        return errors.XapiError("VM_HAS_PCI_ATTACHED", vm)
    if op == "query_services" and not system:
        return errors.XapiError("NOT_SYSTEM_DOMAIN", vm)
    if op == "create_vtpm" and vtpms:
        return errors.XapiError("VTPM_MAX_AMOUNT_REACHED", vtpms)
    return None


def check(db: Database, vm: str, op: str, strict: bool = True) -> errors.XapiError | None:
    """The first reason `op` may not run on `vm` now, checked in xapi's order, or None."""
    rec = db.get("VM", vm)
    blocked = rec["blocked_operations"].get(op)
    if blocked is not None:
        return errors.XapiError("OPERATION_BLOCKED", vm, blocked)
    inputs = _inputs(db, rec)
    state = rec["power_state"]
    if state not in POWER.get(op, ()):
        return errors.vm_bad_power_state(vm, list(POWER.get(op, ())), state)
    current = list(rec["current_operations"].items())
    if current and not allowed_concurrently(op, [o for _, o in current]):
        return errors.other_operation_in_progress("VM", current, vm)
    return _after_power(vm, op, inputs, strict)


def assert_allowed(db: Database, vm: str, op: str, strict: bool = True) -> None:
    error = check(db, vm, op, strict)
    if error is not None:
        raise error


_SIMPLE: dict[tuple[object, ...], list[str]] = {}  # allowed ops for records with no current/blocked operations


def update_allowed(db: Database, vm: str) -> None:
    with db.lock:
        rec = db.get("VM", vm)
        if rec["current_operations"] or rec["blocked_operations"]:
            allowed = [op for op in allowable() if check(db, vm, op) is None]
        else:
            key = _inputs(db, rec)
            simple = _SIMPLE.get(key)
            if simple is None:
                simple = _SIMPLE[key] = [op for op in allowable() if _check_static(NULL_REF, op, key) is None]
            allowed = simple
        db.set("VM", vm, allowed_operations=list(allowed))


def begin(db: Database, vm: str, key: str, op: str) -> None:
    with db.lock:
        db.set_key("VM", vm, "current_operations", key, op)
        update_allowed(db, vm)


def end(db: Database, vm: str, key: str) -> None:
    with db.lock:
        if db.exists("VM", vm):
            db.set_key("VM", vm, "current_operations", key, None)
            update_allowed(db, vm)
