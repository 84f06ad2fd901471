"""Which VM operations are allowed when: xapi_vm_lifecycle.ml's power-state table, concurrency
rules and error parameters (VM_BAD_POWER_STATE, OTHER_OPERATION_IN_PROGRESS, ...)."""

from __future__ import annotations

from . import errors
from .db import Database

_ALL = ("Halted", "Paused", "Suspended", "Running")
# op -> power states it is allowed in, in xapi's order (the order appears in error messages)
POWER: dict[str, tuple[str, ...]] = {
    "start": ("Halted",),
    "start_on": ("Halted",),
    "unpause": ("Paused",),
    "resume": ("Suspended",),
    "resume_on": ("Suspended",),
    "clean_reboot": ("Running",),
    "clean_shutdown": ("Running",),
    "pause": ("Running",),
    "pool_migrate": ("Running",),
    "suspend": ("Running",),
    "changing_VCPUs_live": ("Running",),
    "changing_dynamic_range": ("Halted", "Running"),
    "clone": ("Halted",),
    "copy": ("Halted",),
    "provision": ("Halted",),
    "make_into_template": ("Halted",),
    "destroy": ("Halted", "Suspended"),
    "export": ("Halted", "Suspended"),
    "hard_reboot": ("Paused", "Running"),
    "checkpoint": ("Paused", "Suspended", "Running"),
    "hard_shutdown": ("Paused", "Suspended", "Running"),
    "migrate_send": ("Halted", "Suspended", "Running"),
    "snapshot": _ALL,
    "metadata_export": _ALL,
}
TEMPLATE_OK = {"clone", "copy", "export", "metadata_export", "provision", "changing_dynamic_range"}
CONTROL_DOMAIN_OK = {"changing_dynamic_range", "metadata_export", "snapshot"}
LISTED = tuple(op for op in POWER if op not in ("start_on", "resume_on"))


def allowed_concurrently(op: str, current: list[str]) -> bool:
    if op == "hard_shutdown":
        return "hard_shutdown" not in current
    if op == "hard_reboot":
        return not any(o in ("hard_shutdown", "hard_reboot") for o in current)
    return False


def check(db: Database, vm: str, op: str) -> errors.XapiError | None:
    """The first reason `op` may not run on `vm` now, checked in xapi's order, or None."""
    rec = db.get("VM", vm)
    blocked = rec["blocked_operations"].get(op)
    if blocked is not None:
        return errors.XapiError("OPERATION_BLOCKED", vm, blocked)
    state = rec["power_state"]
    if state not in POWER[op]:
        return errors.vm_bad_power_state(vm, list(POWER[op]), state)
    current = list(rec["current_operations"].values())
    if current and not allowed_concurrently(op, current):
        return errors.other_operation_in_progress("VM", current, vm)
    if rec["is_a_template"] and op not in TEMPLATE_OK:
        return errors.XapiError("VM_IS_TEMPLATE", vm, op)
    if rec["is_control_domain"] and op not in CONTROL_DOMAIN_OK:
        return errors.operation_not_allowed(f"{op} is not allowed on a control domain")
    return None


def assert_allowed(db: Database, vm: str, op: str) -> None:
    error = check(db, vm, op)
    if error is not None:
        raise error


_SIMPLE: dict[tuple[str, bool, bool], list[str]] = {}  # allowed ops for records with no current/blocked operations


def update_allowed(db: Database, vm: str) -> None:
    with db.lock:
        rec = db.get("VM", vm)
        if rec["current_operations"] or rec["blocked_operations"]:
            allowed = [op for op in LISTED if check(db, vm, op) is None]
        else:
            key = (rec["power_state"], rec["is_a_template"], rec["is_control_domain"])
            simple = _SIMPLE.get(key)
            if simple is None:
                simple = _SIMPLE[key] = [op for op in LISTED if check(db, vm, op) is None]
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
