"""VM.pool_migrate: a live migration that takes simulated time and reports progress in phases.

Phases, as fractions of `migration_seconds` (and of task progress):
  0.00-0.05  prepare: destination checked, memory reserved on it (host_metrics memory_free drops)
  0.05-0.85  pre-copy: memory copied in rounds while the VM keeps running
  0.85-1.00  stop-and-copy and handover: the task becomes not cancellable (allowed_operations = [])
At the end resident_on, both hosts' resident_VMs and memory_free move. A cancel while cancellable
ends the task `cancelled` with error_info [TASK_CANCELLED, task] and leaves the VM on the source.

As message_forwarding.ml's pool_migrate does: the destination (only it) lists `vm_migrate` in its
current_operations meanwhile (allocate_vm_to_host), so an evacuating destination refuses with
OTHER_OPERATION_IN_PROGRESS; a successful migration leaves a VM_MIGRATED message on the VM.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from . import errors, host_lifecycle, messages, ops
from .db import NULL_REF
from .memory import vm_needs

if TYPE_CHECKING:
    from .state import PoolState

PREPARE_END = 0.05
COPY_END = 0.85


def _bool_option(options: dict[str, str], key: str) -> bool | None:
    try:
        return {"true": True, "false": False}[str(options[key]).lower()]
    except KeyError:
        return None  # absent, or not a bool: xapi's bool_of_string fails and the option is ignored


def _assert_migration_network(pool: PoolState, network: str, host: str) -> None:
    """xapi_network_attach_helpers.assert_valid_ip_configuration_on_network_for_host."""
    db = pool.db
    pifs = [p for p in db.find("PIF", lambda r: r["network"] == network and r["host"] == host)]
    if not pifs:
        raise errors.XapiError("PIF_NOT_PRESENT", host, network)
    pif = db.get("PIF", pifs[0])
    if not pif["currently_attached"]:
        raise errors.XapiError("REQUIRED_PIF_IS_UNPLUGGED", pifs[0])
    if not (pif["IP"] if pif["primary_address_type"] == "IPv4" else pif["IPv6"]):
        raise errors.XapiError("INTERFACE_HAS_NO_IP", pifs[0])


def pool_migrate(pool: PoolState, task: str | None, vm: str, dest: str, options: dict[str, str]) -> None:
    """message_forwarding.ml's pool_migrate: options force (the lifecycle checks are not
    strict: an immobile VM may move), network (the migration stream's network must have an
    attached PIF with an address on the destination) and compress (accepted; a simulated
    stream is no faster compressed)."""
    db = pool.db
    force = bool(_bool_option(options, "force"))
    with ops.operation(pool, task, vm, "pool_migrate", strict=not force) as key:
        with db.lock:
            db.get("host", dest)
            source = db.get("VM", vm)["resident_on"]
            if dest != source:
                ops.assert_can_boot_here(pool, vm, dest)
            if "network" in options:  # checked by Xapi_vm_migrate, after the placement checks
                _assert_migration_network(pool, str(options["network"]), dest)
            host_lifecycle.begin(db, dest, key, "vm_migrate")
            if dest != source:
                pool.memory.reserve(dest, vm, vm_needs(db.get("VM", vm)))
            db.set("VM", vm, scheduled_to_be_resident_on=dest)
            pool.tasks.set_cancellable(task, True)
        try:
            _transfer(pool, task, vm)
        except BaseException:
            pool.memory.release(dest, vm)
            if db.exists("VM", vm):
                db.set("VM", vm, scheduled_to_be_resident_on=NULL_REF)
            raise
        else:
            with db.lock:
                pool.memory.release(dest, vm, refresh=False)
                ops.move_resident(pool, vm, dest)
        finally:
            host_lifecycle.end(db, dest, key)
    _migrated_message(pool, vm, source, dest)


def _migrated_message(pool: PoolState, vm: str, source: str, dest: str) -> None:
    db = pool.db
    with db.lock:
        rec, src, dst = db.get("VM", vm), db.get("host", source), db.get("host", dest)
        body = (
            f"VM '{rec['name_label']}' (uuid: {rec['uuid']}) migrated from host '{src['name_label']}' "
            f"(uuid: {src['uuid']}) to host '{dst['name_label']}' (uuid: {dst['uuid']})"
        )
        uuid = rec["uuid"]
    name, priority = messages.VM_MIGRATED
    pool.messages.create(name, priority, "VM", uuid, body)


def _transfer(pool: PoolState, task: str | None, vm: str) -> None:
    total = max(float(pool.migration_seconds), 0.0)
    tick = min(0.25, max(0.02, total / 40))
    started = time.monotonic()
    cancellable = True
    while True:
        fraction = (time.monotonic() - started) / total if total else 1.0
        if cancellable and fraction >= COPY_END:
            pool.tasks.set_cancellable(task, False)  # stop-and-copy: past the point of no return
            cancellable = False
        if fraction >= 1.0:
            break
        pool.tasks.set_progress(task, fraction * 0.99)
        pool.tasks.sleep(task, tick)
        state = pool.db.field("VM", vm, "power_state")
        if state != "Running":  # e.g. hard_shutdown meanwhile, which xapi allows concurrently
            raise errors.vm_bad_power_state(vm, ["Running"], state)
