"""Which host operations are allowed when: xapi_host_helpers.ml's valid_operations, and the
current_operations bookkeeping of with_host_operation / allocate_vm_to_host (message_forwarding.ml).

Operations that bring VMs in (provision, vm_resume, vm_migrate) exclude those that take them away
(evacuate, reboot, shutdown) and the other way round; reboot and shutdown need a disabled host;
power_on needs a dead one (and a power-on mode and plugin, which simulated hosts never have)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from . import errors
from .db import Database

# datamodel_host.ml's host_allowed_operations, in its order (allowed_operations lists them so)
OPERATIONS = (
    "provision",
    "evacuate",
    "shutdown",
    "reboot",
    "power_on",
    "vm_start",
    "vm_resume",
    "vm_migrate",
    "apply_updates",
    "enable",
)
_CREATING = ("provision", "vm_resume", "vm_migrate")
_REMOVING = ("evacuate", "reboot", "shutdown")
# an operation in progress -> the operations it excludes
_EXCLUDES = {
    "reboot": ("shutdown", "apply_updates"),
    "shutdown": ("reboot", "apply_updates"),
    "apply_updates": ("reboot", "shutdown", "enable"),
    "provision": ("provision",),
}


def _in_progress(current: dict[str, str], ops: tuple[str, ...]) -> tuple[str, str] | None:
    return next(((key, op) for key, op in current.items() if op in ops), None)


def valid_operations(db: Database, host: str) -> dict[str, errors.XapiError | None]:
    """Every host operation -> the error it would fail with now, or None (first error wins)."""
    rec = db.get("host", host)
    current: dict[str, str] = rec["current_operations"]
    table: dict[str, errors.XapiError | None] = dict.fromkeys(OPERATIONS)

    def refuse(error: errors.XapiError, ops: tuple[str, ...]) -> None:
        for op in ops:
            if table[op] is None:
                table[op] = error

    def busy(op_type: str, key: str) -> errors.XapiError:
        return errors.XapiError("OTHER_OPERATION_IN_PROGRESS", "host", host, op_type, key)

    creating, removing = _in_progress(current, _CREATING), _in_progress(current, _REMOVING)
    for op in OPERATIONS:
        if op == "power_on":
            continue
        if op in _CREATING and removing is not None:
            refuse(busy(removing[1], removing[0]), (op,))
        elif op in _REMOVING and creating is not None:
            refuse(busy(creating[1], creating[0]), (op,))
    for running, excluded in _EXCLUDES.items():
        found = _in_progress(current, (running,))
        if found is not None:
            refuse(busy(running, found[0]), excluded)
    if rec["enabled"]:
        refuse(errors.XapiError("HOST_NOT_DISABLED"), ("reboot", "shutdown", "apply_updates"))
    metrics = db.tables["host_metrics"].get(rec["metrics"])
    if metrics is not None and metrics["live"]:
        refuse(errors.XapiError("HOST_IS_LIVE", host), ("power_on",))
    if rec["power_on_mode"] == "":
        refuse(errors.XapiError("HOST_POWER_ON_MODE_DISABLED"), ("power_on",))
    refuse(errors.XapiError("XENAPI_MISSING_PLUGIN", "power-on-host"), ("power_on",))
    return table


def assert_allowed(db: Database, host: str, op: str) -> None:
    with db.lock:
        error = valid_operations(db, host)[op]
    if error is not None:
        raise error


def update_allowed(db: Database, host: str) -> None:
    with db.lock:
        table = valid_operations(db, host)
        db.set("host", host, allowed_operations=[op for op in OPERATIONS if table[op] is None])


def begin(db: Database, host: str, key: str, op: str) -> None:
    """Check `op` may run, list it in current_operations under `key` (the task, as xapi keys it)."""
    with db.lock:
        assert_allowed(db, host, op)
        db.set_key("host", host, "current_operations", key, op)
        update_allowed(db, host)


def end(db: Database, host: str, key: str) -> None:
    with db.lock:
        if db.exists("host", host):
            db.set_key("host", host, "current_operations", key, None)
            update_allowed(db, host)


@contextmanager
def operation(db: Database, host: str, key: str, op: str) -> Iterator[None]:
    """Xapi_host_helpers.with_host_operation."""
    begin(db, host, key, op)
    try:
        yield
    finally:
        end(db, host, key)
