"""VM power operations and placement checks, shared by the API, migration and test hooks."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

from . import consoles, errors, host_lifecycle, lifecycle, schema
from .db import NULL_REF, new_ref
from .domids import next_domid
from .memory import vm_needs

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .state import PoolState


# -- placement ---------------------------------------------------------------------------------
def host_sees_sr(pool: PoolState, host: str, sr: str) -> bool:
    db = pool.db
    return any(
        db.get("PBD", pbd)["host"] == host and db.get("PBD", pbd)["currently_attached"]
        for pbd in db.get("SR", sr)["PBDs"]
    )


def network_available(pool: PoolState, net: str, host: str) -> bool:
    """xapi_network_attach_helpers.assert_can_see_named_networks: a network with PIFs reaches
    the hosts it has PIFs on; one without (internal) is shared if other_config says so or it is
    unmanaged, else pinned to the host its running VMs are on (anywhere while none runs)."""
    db = pool.db
    if not db.exists("network", net):
        return False
    n = db.get("network", net)
    if n["PIFs"]:
        return any(db.get("PIF", p)["host"] == host for p in n["PIFs"])
    if n["other_config"].get("assume_network_is_shared") == "true" or not n["managed"]:
        return True
    hosts = set()
    for vif in n["VIFs"]:
        vm = db.tables["VM"].get(db.get("VIF", vif)["VM"])
        if vm is not None and vm["power_state"] == "Running":
            hosts.add(vm["resident_on"])
    return not hosts or host in hosts


def assert_can_boot_here(
    pool: PoolState, vm: str, host: str, check_memory: bool = True, check_srs: bool = True
) -> None:
    """Xapi_vm_helpers.assert_can_boot_here, in its order: the host is live, a control domain
    stays on its affinity, the host is enabled (unless the VM is a control domain or already
    runs there: a local live migration), it sees every SR the VM's disks are on (unless
    ``check_srs`` is False: do_sr_check:false, as storage migration asks), then memory."""
    db = pool.db
    with db.lock:
        rec = db.get("VM", vm)
        h = db.get("host", host)
        metrics = db.tables["host_metrics"].get(h["metrics"])
        if metrics is None or not metrics["live"]:
            raise errors.XapiError("HOST_NOT_LIVE")
        if rec["is_control_domain"] and rec["affinity"] not in (NULL_REF, host):
            raise errors.operation_not_allowed("Cannot boot a control domain on a host different from its affinity")
        local_live_migration = rec["power_state"] == "Running" and rec["resident_on"] == host
        if not rec["is_control_domain"] and not local_live_migration and not h["enabled"]:
            raise errors.XapiError("HOST_DISABLED", host)
        for vbd in rec["VBDs"]:
            vbd_rec = db.get("VBD", vbd)
            if vbd_rec["empty"] or vbd_rec["VDI"] == NULL_REF:
                continue
            sr = db.get("VDI", vbd_rec["VDI"])["SR"]
            if check_srs and not host_sees_sr(pool, host, sr):
                raise errors.vm_requires_sr(vm, sr)
        for vif in rec["VIFs"]:
            net = db.get("VIF", vif)["network"]
            if not network_available(pool, net, host):
                raise errors.XapiError("VM_REQUIRES_NETWORK", vm, net)
        if check_memory and rec["resident_on"] != host:
            needed, available = vm_needs(rec), pool.memory.free(host)
            if needed > available:
                raise errors.host_not_enough_free_memory(needed, max(available, 0))


def choose_host(pool: PoolState, vm: str) -> str:
    db = pool.db
    affinity = db.get("VM", vm)["affinity"]
    candidates = sorted(db.refs("host"), key=pool.memory.free, reverse=True)
    if affinity in candidates:
        candidates.remove(affinity)
        candidates.insert(0, affinity)
    failures = []
    for host in candidates:
        try:
            assert_can_boot_here(pool, vm, host)
            return host
        except errors.XapiError as exc:
            failures.append(exc)
    if len(failures) == 1:
        raise failures[0]
    raise errors.XapiError("NO_HOSTS_AVAILABLE")


# -- residency ---------------------------------------------------------------------------------
def _attach_devices(pool: PoolState, vm: str, attached: bool) -> None:
    db = pool.db
    rec = db.get("VM", vm)
    for vbd in rec["VBDs"]:
        db.set("VBD", vbd, currently_attached=attached and not db.get("VBD", vbd)["empty"])
    for vif in rec["VIFs"]:
        db.set("VIF", vif, currently_attached=attached)


def _guest_metrics(pool: PoolState, vm: str) -> str:
    guest = pool.guests.get(vm)
    if guest is None:
        return NULL_REF
    return pool.db.create("VM_guest_metrics", schema.new_record("VM_guest_metrics", **guest.metrics_fields()))


def make_resident(pool: PoolState, vm: str, host: str, state: str = "Running") -> None:
    db = pool.db
    with db.lock:
        rec = db.get("VM", vm)
        fields: dict[str, object] = {
            "power_state": state,
            "resident_on": host,
            "domid": next_domid(),
            "memory_target": rec["memory_static_max"],
            "scheduled_to_be_resident_on": NULL_REF,
        }
        if rec["guest_metrics"] == NULL_REF:
            fields["guest_metrics"] = _guest_metrics(pool, vm)
        db.set("VM", vm, **fields)
        db.add_to("host", host, "resident_VMs", vm)
        if not rec["consoles"]:
            consoles.create_console(db, vm)
        if db.exists("VM_metrics", rec["metrics"]):
            db.set(
                "VM_metrics",
                rec["metrics"],
                memory_actual=rec["memory_static_max"],
                start_time=schema.now(),
                last_updated=schema.now(),
                state=[state.lower()],
            )
        _attach_devices(pool, vm, True)
        pool.memory.refresh(host)
        lifecycle.update_allowed(db, vm)


def make_nonresident(pool: PoolState, vm: str, state: str = "Halted") -> None:
    db = pool.db
    with db.lock:
        rec = db.get("VM", vm)
        host = rec["resident_on"]
        fields: dict[str, object] = {"power_state": state, "resident_on": NULL_REF, "domid": -1}
        if state == "Halted" and rec["guest_metrics"] != NULL_REF:
            if db.exists("VM_guest_metrics", rec["guest_metrics"]):
                db.destroy("VM_guest_metrics", rec["guest_metrics"])
            fields["guest_metrics"] = NULL_REF
        db.set("VM", vm, **fields)
        consoles.destroy_consoles(db, vm)
        if host != NULL_REF:
            db.remove_from("host", host, "resident_VMs", vm)
        if db.exists("VM_metrics", rec["metrics"]):
            db.set("VM_metrics", rec["metrics"], memory_actual=0, last_updated=schema.now(), state=[])
        _attach_devices(pool, vm, False)
        pool.memory.refresh(host)
        lifecycle.update_allowed(db, vm)


def move_resident(pool: PoolState, vm: str, dest: str) -> None:
    db = pool.db
    with db.lock:
        source = db.get("VM", vm)["resident_on"]
        db.set("VM", vm, resident_on=dest, domid=next_domid(), scheduled_to_be_resident_on=NULL_REF)
        if source != NULL_REF:
            db.remove_from("host", source, "resident_VMs", vm)
        db.add_to("host", dest, "resident_VMs", vm)
        pool.memory.refresh(source)
        pool.memory.refresh(dest)


# -- operations ----------------------------------------------------------------------------------
@contextmanager
def operation(pool: PoolState, task: str | None, vm: str, op: str, strict: bool = True) -> Iterator[str]:
    """Run `op` on `vm` with it listed in current_operations (keyed by the task, as xapi does)."""
    key = task or new_ref()
    with pool.db.lock:
        lifecycle.assert_allowed(pool.db, vm, op, strict)
        lifecycle.begin(pool.db, vm, key, op)
    try:
        yield key
    finally:
        lifecycle.end(pool.db, vm, key)


def _work(pool: PoolState, task: str | None) -> None:
    """The operation's simulated duration; like xenopsd tasks it can be cancelled meanwhile."""
    if pool.power_seconds <= 0:
        return
    pool.tasks.set_cancellable(task, True)
    pool.tasks.sleep(task, pool.power_seconds)
    pool.tasks.set_cancellable(task, False)


def start(pool: PoolState, task: str | None, vm: str, host: str | None, paused: bool, op: str = "start") -> None:
    db = pool.db
    # the chosen host lists vm_start / vm_resume meanwhile (message_forwarding's allocate_vm_to_host)
    host_op = "vm_resume" if op.startswith("resume") else "vm_start"
    with operation(pool, task, vm, op) as key:
        with db.lock:
            host = host if host is not None else choose_host(pool, vm)
            assert_can_boot_here(pool, vm, host)
            host_lifecycle.begin(db, host, key, host_op)
            pool.memory.reserve(host, vm, vm_needs(db.get("VM", vm)))
        try:
            _work(pool, task)
        except BaseException:
            pool.memory.release(host, vm)
            host_lifecycle.end(db, host, key)
            raise
        with db.lock:
            pool.memory.release(host, vm, refresh=False)
            make_resident(pool, vm, host, "Paused" if paused else "Running")
            host_lifecycle.end(db, host, key)


def shutdown(pool: PoolState, task: str | None, vm: str, op: str) -> None:
    with operation(pool, task, vm, op):
        _work(pool, task)
        make_nonresident(pool, vm, "Halted")


def suspend(pool: PoolState, task: str | None, vm: str) -> None:
    with operation(pool, task, vm, "suspend"):
        _work(pool, task)
        make_nonresident(pool, vm, "Suspended")


def reboot(pool: PoolState, task: str | None, vm: str, op: str) -> None:
    db = pool.db
    with operation(pool, task, vm, op):
        _work(pool, task)
        with db.lock:
            rec = db.get("VM", vm)
            db.set("VM", vm, domid=next_domid(), power_state="Running")
            if db.exists("VM_metrics", rec["metrics"]):
                db.set("VM_metrics", rec["metrics"], start_time=schema.now(), last_updated=schema.now())


def set_paused(pool: PoolState, task: str | None, vm: str, paused: bool) -> None:
    with operation(pool, task, vm, "pause" if paused else "unpause"):
        pool.db.set("VM", vm, power_state="Paused" if paused else "Running")
