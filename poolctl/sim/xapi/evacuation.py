"""Host evacuation as xapi_host.ml plans and runs it (compute_evacuation_plan_no_wlb, evacuate).

The plan maps every resident VM (control domains aside) either to a destination or to the error
that keeps it there. Destinations are the other enabled hosts. A VM must be able to boot on every
one of them, storage-wise (so a VM with a disk on local storage cannot move: VM_REQUIRES_SR), and
pool_migrate must be allowed on it; memory is then packed biggest-VM-first onto the host with the
most free memory (Binpack.biggest_fit_decreasing), and a VM that fits nowhere gets
HOST_NOT_ENOUGH_FREE_MEMORY [vm]. With no other enabled host every VM gets NO_HOSTS_AVAILABLE [vm].
Evacuating runs the plan as Async.VM.pool_migrate tasks, `batch_size` at a time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import errors, host_lifecycle, lifecycle, migrate, ops
from .db import NULL_REF, new_ref
from .memory import vm_needs

if TYPE_CHECKING:
    from .state import PoolState

DEFAULT_BATCH_SIZE = 10  # Xapi_globs.evacuation_batch_size (xapi.conf evacuation-batch-size)

Plan = dict[str, str | errors.XapiError]  # VM -> destination host, or why it cannot move


def biggest_fit_decreasing(things: list[tuple[str, int]], bins: list[tuple[str, int]]) -> dict[str, str]:
    """Binpack.biggest_fit_decreasing: each thing, biggest first, into the bin with the most room
    left, if it fits there (else nowhere); ties keep their order."""
    placed: dict[str, str] = {}
    room = sorted(bins, key=lambda b: -b[1])
    for thing, size in sorted(things, key=lambda t: -t[1]):
        if not room or room[0][1] - size < 0:
            continue
        (first, free), rest = room[0], room[1:]
        placed[thing] = first
        left = free - size
        at = next((i for i, (_, f) in enumerate(rest) if left >= f), len(rest))
        room = [*rest[:at], (first, left), *rest[at:]]
    return placed


def plan(pool: PoolState, host: str) -> Plan:
    db = pool.db
    with db.lock:
        db.get("host", host)
        targets = [h for h in db.refs("host") if h != host and db.get("host", h)["enabled"]]
        vms = [vm for vm in db.get("host", host)["resident_VMs"] if not db.get("VM", vm)["is_control_domain"]]
        if not targets:
            return {vm: errors.XapiError("NO_HOSTS_AVAILABLE", vm) for vm in vms}
        plans: Plan = {}
        movable = []
        for vm in vms:
            try:
                for target in targets:
                    ops.assert_can_boot_here(pool, vm, target, check_memory=False)
                movable.append(vm)
            except errors.XapiError as exc:
                plans[vm] = exc
        for vm in vms:
            error = lifecycle.check(db, vm, "pool_migrate")
            if error is not None:
                plans[vm] = error
        placement = biggest_fit_decreasing(
            [(vm, vm_needs(db.get("VM", vm))) for vm in movable], [(h, pool.memory.free(h)) for h in targets]
        )
        for vm in movable:
            if vm not in placement:
                plans[vm] = errors.XapiError("HOST_NOT_ENOUGH_FREE_MEMORY", vm)
        for vm, dest in placement.items():
            try:
                ops.assert_can_boot_here(pool, vm, dest, check_memory=False)
            except errors.XapiError as exc:
                plans[vm] = exc
            plans.setdefault(vm, dest)
        return plans


def blockers(plans: Plan) -> dict[str, errors.XapiError]:
    return {vm: p for vm, p in plans.items() if isinstance(p, errors.XapiError)}


def assert_can_evacuate(pool: PoolState, host: str) -> None:
    """The Miami-era check: one CANNOT_EVACUATE_HOST whose parameter joins every VM's error
    ("CODE,param,..." joined by "|")."""
    found = blockers(plan(pool, host))
    if found:
        raise errors.XapiError("CANNOT_EVACUATE_HOST", "|".join(",".join(e.description) for e in found.values()))


def _assert_network_reaches(pool: PoolState, network: str, host: str) -> None:
    """Xapi_network_attach_helpers.assert_valid_ip_configuration_on_network_for_host."""
    db = pool.db
    pifs = db.find("PIF", lambda rec: rec["network"] == network and rec["host"] == host)
    if not pifs:
        raise errors.XapiError("PIF_NOT_PRESENT", host, network)
    pif = db.get("PIF", pifs[0])
    if not pif["currently_attached"]:
        raise errors.XapiError("REQUIRED_PIF_IS_UNPLUGGED", pifs[0])
    address = pif["IP"] if pif["primary_address_type"] == "IPv4" else next(iter(pif["IPv6"]), "")
    if not address:
        raise errors.XapiError("INTERFACE_HAS_NO_IP", pifs[0])


def evacuate(pool: PoolState, task: str | None, host: str, network: str, batch_size: int) -> None:
    db = pool.db
    with host_lifecycle.operation(db, host, task or new_ref(), "evacuate"):
        plans = plan(pool, host)
        for error in blockers(plans).values():
            raise error
        moves = [(vm, dest) for vm, dest in plans.items() if isinstance(dest, str)]
        options = {"live": "true"}
        if network != NULL_REF:
            for dest in sorted({dest for _, dest in moves}):
                _assert_network_reaches(pool, network, dest)
            options = {"network": network, "live": "true"}
        size = batch_size if batch_size > 0 else DEFAULT_BATCH_SIZE
        _run_in_batches(pool, task, moves, options, max(1, abs(size)))
        with db.lock:
            left = [vm for vm in db.get("host", host)["resident_VMs"] if not db.get("VM", vm)["is_control_domain"]]
        if left:
            raise errors.internal_error(f"evacuate: {len(left)} VMs are still resident on {host}")


def _run_in_batches(
    pool: PoolState, task: str | None, moves: list[tuple[str, str]], options: dict[str, str], size: int
) -> None:
    """At most `size` migrations at once, the next one starting as soon as one ends; a failure
    other than VM_BAD_POWER_STATE (the VM was shut down meanwhile) ends the evacuation."""
    tasks = pool.tasks

    def launch(vm: str, dest: str) -> str:
        return tasks.spawn(
            "VM.pool_migrate", pool.master, lambda ref: migrate.pool_migrate(pool, ref, vm, dest, options)
        )

    queue = list(moves)
    pending = {launch(vm, dest) for vm, dest in queue[:size]}
    queue = queue[size:]
    completed = 0
    try:
        while pending:
            for ref in tasks.wait_any(pending):
                pending.discard(ref)
                _assert_success(pool, ref)
                tasks.destroy(ref)
                completed += 1
                tasks.set_progress(task, completed / len(moves))
                if queue:
                    pending.add(launch(*queue.pop(0)))
    finally:
        for ref in pending:
            tasks.destroy(ref)
    tasks.set_progress(task, 1.0)


def _assert_success(pool: PoolState, ref: str) -> None:
    db = pool.db
    with db.lock:
        if not db.exists("task", ref):
            return
        rec = db.get("task", ref)
        status, info = rec["status"], list(rec["error_info"])
    if status == "success":
        return
    if status != "failure":
        raise errors.internal_error(f"{ref}, unexpected status of migration task")
    if not info:
        raise errors.internal_error(f"{ref}, couldn't extract error result from task")
    if info[0] != "VM_BAD_POWER_STATE":
        raise errors.XapiError(info[0], *info[1:])
