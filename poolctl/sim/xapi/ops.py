"""VM power operations and placement checks, shared by the API, migration and test hooks."""

from __future__ import annotations

import itertools
from contextlib import contextmanager
from typing import TYPE_CHECKING

from . import errors, lifecycle, schema
from .db import NULL_REF, new_ref
from .memory import vm_needs

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .simulator import Simulator

_domids = itertools.count(1)


def next_domid() -> int:
    return next(_domids)


# -- placement ---------------------------------------------------------------------------------
def host_sees_sr(sim: Simulator, host: str, sr: str) -> bool:
    db = sim.db
    return any(
        db.get("PBD", pbd)["host"] == host and db.get("PBD", pbd)["currently_attached"]
        for pbd in db.get("SR", sr)["PBDs"]
    )


def assert_can_boot_here(sim: Simulator, vm: str, host: str) -> None:
    """xapi's order: the host is enabled, it sees every SR the VM's disks are on, then memory."""
    db = sim.db
    with db.lock:
        rec = db.get("VM", vm)
        h = db.get("host", host)
        if not h["enabled"]:
            raise errors.XapiError("HOST_DISABLED", host)
        for vbd in rec["VBDs"]:
            vbd_rec = db.get("VBD", vbd)
            if vbd_rec["empty"] or vbd_rec["VDI"] == NULL_REF:
                continue
            sr = db.get("VDI", vbd_rec["VDI"])["SR"]
            if not host_sees_sr(sim, host, sr):
                raise errors.vm_requires_sr(vm, sr)
        if rec["resident_on"] != host:
            needed, available = vm_needs(rec), sim.memory.free(host)
            if needed > available:
                raise errors.host_not_enough_free_memory(needed, max(available, 0))


def choose_host(sim: Simulator, vm: str) -> str:
    db = sim.db
    affinity = db.get("VM", vm)["affinity"]
    candidates = sorted(db.refs("host"), key=sim.memory.free, reverse=True)
    if affinity in candidates:
        candidates.remove(affinity)
        candidates.insert(0, affinity)
    failures = []
    for host in candidates:
        try:
            assert_can_boot_here(sim, vm, host)
            return host
        except errors.XapiError as exc:
            failures.append(exc)
    if len(failures) == 1:
        raise failures[0]
    raise errors.XapiError("NO_HOSTS_AVAILABLE")


# -- residency ---------------------------------------------------------------------------------
def _attach_devices(sim: Simulator, vm: str, attached: bool) -> None:
    db = sim.db
    rec = db.get("VM", vm)
    for vbd in rec["VBDs"]:
        db.set("VBD", vbd, currently_attached=attached and not db.get("VBD", vbd)["empty"])
    for vif in rec["VIFs"]:
        db.set("VIF", vif, currently_attached=attached)


def _guest_metrics(sim: Simulator, vm: str) -> str:
    guest = sim.guests.get(vm)
    if guest is None:
        return NULL_REF
    return sim.db.create("VM_guest_metrics", schema.new_record("VM_guest_metrics", **guest.metrics_fields()))


def make_resident(sim: Simulator, vm: str, host: str, state: str = "Running") -> None:
    db = sim.db
    with db.lock:
        rec = db.get("VM", vm)
        fields: dict = {
            "power_state": state,
            "resident_on": host,
            "domid": next_domid(),
            "memory_target": rec["memory_static_max"],
            "scheduled_to_be_resident_on": NULL_REF,
        }
        if rec["guest_metrics"] == NULL_REF:
            fields["guest_metrics"] = _guest_metrics(sim, vm)
        db.set("VM", vm, **fields)
        db.add_to("host", host, "resident_VMs", vm)
        if db.exists("VM_metrics", rec["metrics"]):
            db.set(
                "VM_metrics",
                rec["metrics"],
                memory_actual=rec["memory_static_max"],
                start_time=schema.now(),
                last_updated=schema.now(),
                state=[state.lower()],
            )
        _attach_devices(sim, vm, True)
        sim.memory.refresh(host)
        lifecycle.update_allowed(db, vm)


def make_nonresident(sim: Simulator, vm: str, state: str = "Halted") -> None:
    db = sim.db
    with db.lock:
        rec = db.get("VM", vm)
        host = rec["resident_on"]
        fields: dict = {"power_state": state, "resident_on": NULL_REF, "domid": -1}
        if state == "Halted" and rec["guest_metrics"] != NULL_REF:
            if db.exists("VM_guest_metrics", rec["guest_metrics"]):
                db.destroy("VM_guest_metrics", rec["guest_metrics"])
            fields["guest_metrics"] = NULL_REF
        db.set("VM", vm, **fields)
        if host != NULL_REF:
            db.remove_from("host", host, "resident_VMs", vm)
        if db.exists("VM_metrics", rec["metrics"]):
            db.set("VM_metrics", rec["metrics"], memory_actual=0, last_updated=schema.now(), state=[])
        _attach_devices(sim, vm, False)
        sim.memory.refresh(host)
        lifecycle.update_allowed(db, vm)


def move_resident(sim: Simulator, vm: str, dest: str) -> None:
    db = sim.db
    with db.lock:
        source = db.get("VM", vm)["resident_on"]
        db.set("VM", vm, resident_on=dest, domid=next_domid(), scheduled_to_be_resident_on=NULL_REF)
        if source != NULL_REF:
            db.remove_from("host", source, "resident_VMs", vm)
        db.add_to("host", dest, "resident_VMs", vm)
        sim.memory.refresh(source)
        sim.memory.refresh(dest)


# -- operations ----------------------------------------------------------------------------------
@contextmanager
def operation(sim: Simulator, task: str | None, vm: str, op: str) -> Iterator[str]:
    """Run `op` on `vm` with it listed in current_operations (keyed by the task, as xapi does)."""
    key = task or new_ref()
    with sim.db.lock:
        lifecycle.assert_allowed(sim.db, vm, op)
        lifecycle.begin(sim.db, vm, key, op)
    try:
        yield key
    finally:
        lifecycle.end(sim.db, vm, key)


def _work(sim: Simulator, task: str | None) -> None:
    """The operation's simulated duration; like xenopsd tasks it can be cancelled meanwhile."""
    if sim.power_seconds <= 0:
        return
    sim.tasks.set_cancellable(task, True)
    sim.tasks.sleep(task, sim.power_seconds)
    sim.tasks.set_cancellable(task, False)


def start(sim: Simulator, task: str | None, vm: str, host: str | None, paused: bool, op: str = "start") -> None:
    db = sim.db
    with operation(sim, task, vm, op):
        with db.lock:
            host = host if host is not None else choose_host(sim, vm)
            assert_can_boot_here(sim, vm, host)
            sim.memory.reserve(host, vm, vm_needs(db.get("VM", vm)))
        try:
            _work(sim, task)
        except BaseException:
            sim.memory.release(host, vm)
            raise
        with db.lock:
            sim.memory.release(host, vm, refresh=False)
            make_resident(sim, vm, host, "Paused" if paused else "Running")


def shutdown(sim: Simulator, task: str | None, vm: str, op: str) -> None:
    with operation(sim, task, vm, op):
        _work(sim, task)
        make_nonresident(sim, vm, "Halted")


def suspend(sim: Simulator, task: str | None, vm: str) -> None:
    with operation(sim, task, vm, "suspend"):
        _work(sim, task)
        make_nonresident(sim, vm, "Suspended")


def reboot(sim: Simulator, task: str | None, vm: str, op: str) -> None:
    db = sim.db
    with operation(sim, task, vm, op):
        _work(sim, task)
        with db.lock:
            rec = db.get("VM", vm)
            db.set("VM", vm, domid=next_domid(), power_state="Running")
            if db.exists("VM_metrics", rec["metrics"]):
                db.set("VM_metrics", rec["metrics"], start_time=schema.now(), last_updated=schema.now())


def set_paused(sim: Simulator, task: str | None, vm: str, paused: bool) -> None:
    with operation(sim, task, vm, "pause" if paused else "unpause"):
        sim.db.set("VM", vm, power_state="Paused" if paused else "Running")
