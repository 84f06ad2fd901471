"""Storage motion within one pool: host.migrate_receive, VM.assert_can_migrate, VM.migrate_send
and VDI.pool_migrate, after xapi_host.ml's migrate_receive, xapi_vm_migrate.ml and
message_forwarding.ml.

migrate_send runs in two phases, as xapi's does: the disks first (a mirror per VDI onto its SR
in the map; the VM keeps running on its source), then the memory, as pool_migrate. The disk
phase takes the disks' physical_utilisation at `PoolState.storage_mib_s`; the task's progress
covers it in proportion to its share of the whole time. The destination VDIs are created
when the mirror starts (SR_FULL then, as the SM's VDI.create says); a failure or a cancel
in the disk phase destroys them and leaves the VM where it was with its old VDIs. At the end
the VBDs point at the new VDIs and the old ones are destroyed.

A `dest` whose host is not in this pool is another pool's (xapi's is_intra_pool test): the
move is cross-pool and cross_pool.py carries it out by talking to that pool's XAPI.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from . import cross_pool, devices, errors, host_lifecycle, lifecycle, ops
from .db import NULL_REF
from .memory import vm_needs
from .migrate import COPY_END, _assert_migration_network, _migrated_message

if TYPE_CHECKING:
    from .state import PoolState

MIB = 1024 * 1024
DEST_KEYS = ("SM", "host", "xenops", "session_id", "master")  # xapi_vm_migrate.ml's _sm, _host, ...


def migrate_receive(pool: PoolState, session: str | None, host: str, network: str) -> dict[str, str]:
    """xapi_host.ml's migrate_receive: a session for the destination (login_no_password) and the
    URLs of its storage and xenops services on the network's address of that host, and of its
    master. The URLs carry the port the simulator is served on when it is not HTTP's own."""
    db = pool.db
    with db.lock:
        db.get("host", host)
        pifs = [p for p in db.get("network", network)["PIFs"] if db.get("PIF", p)["host"] == host]
        if not pifs:
            raise errors.XapiError("HOST_CANNOT_ATTACH_NETWORK", host, network)
        pif = db.get("PIF", pifs[0])
        ip = pif["IP"]
        if not ip:
            if pif["ip_configuration_mode"] == "None":
                raise errors.XapiError("PIF_HAS_NO_NETWORK_CONFIGURATION", pifs[0])
            if pif["ip_configuration_mode"] == "DHCP":
                raise errors.XapiError("INTERFACE_HAS_NO_IP", pifs[0])
            raise errors.internal_error("No IP address on PIF")
        master = db.get("host", pool.master)["address"]
    scheme, port = pool.served or ("http", 80)
    ip, master = (f"{a}:{port}" if port != 80 else a for a in (ip, master))
    user = pool.sessions.record(session)["auth_user_name"] if session else pool.username
    new_session = pool.sessions.login(user, host, "migrate_receive")
    return {
        "SM": f"http://{ip}/services/SM?session_id={new_session}",
        "host": host,
        "xenops": f"http://{ip}/services/xenops?session_id={new_session}",
        "session_id": new_session,
        "master": f"{scheme}://{master}/",
    }


def _check_dest(dest: object) -> dict[str, Any]:
    if not isinstance(dest, dict) or any(k not in dest for k in DEST_KEYS):
        # xapi's List.assoc on the map raises Not_found, which reaches the client as INTERNAL_ERROR
        raise errors.internal_error("Not_found")
    return dest


def remote_of(pool: PoolState, dest: object) -> cross_pool.Remote | None:
    """The destination pool when ``dest`` is another pool's (its host is not one of ours)."""
    d = _check_dest(dest)
    return None if pool.db.exists("host", str(d["host"])) else cross_pool.Remote(d)


def _dest_host(pool: PoolState, dest: object, call: str) -> str:
    d = _check_dest(dest)
    pool.sessions.check(d["session_id"])
    return str(d["host"])


def _vm_vdis(pool: PoolState, vm: str) -> list[tuple[str, str]]:
    """(VBD, VDI) of the VM's disks: vdi_filter leaves out empty and CD VBDs."""
    db = pool.db
    out = []
    for vbd in db.get("VM", vm)["VBDs"]:
        rec = db.get("VBD", vbd)
        if rec["empty"] or rec["type"] == "CD" or rec["VDI"] == NULL_REF:
            continue
        out.append((vbd, rec["VDI"]))
    return out


def _check_maps(pool: PoolState, vm: str, vdi_map: object, vif_map: object) -> dict[str, str]:
    if not isinstance(vdi_map, dict):
        raise errors.field_type_error("vdi_map")
    if not isinstance(vif_map, dict):
        raise errors.field_type_error("vif_map")
    db = pool.db
    for vdi, sr in vdi_map.items():
        db.get("VDI", str(vdi))
        db.get("SR", str(sr))
    for _, vdi in _vm_vdis(pool, vm):  # check_vdi_map
        if vdi not in vdi_map:
            raise errors.XapiError("VDI_NOT_IN_MAP", vdi)
    return {str(k): str(v) for k, v in vdi_map.items()}


def assert_can_migrate(
    pool: PoolState, vm: str, dest: object, vdi_map: object, vif_map: object, options: dict[str, Any]
) -> str:
    """xapi_vm_migrate.assert_can_migrate, intra-pool: every VDI mapped, the destination can
    boot the VM (do_sr_check:false: the VDIs will move), no VIF map within a pool, and no
    encrypted or CBT-enabled VDI is to move. Returns the destination host."""
    db = pool.db
    with db.lock:
        db.get("VM", vm)
        host = _dest_host(pool, dest, "VM.assert_can_migrate")
        vmap = _check_maps(pool, vm, vdi_map, vif_map)
        ops.assert_can_boot_here(pool, vm, host, check_srs=False)
        if vif_map:
            raise errors.operation_not_allowed(
                "VIF mapping is not allowed for intra-pool migration -all VIFs must be on the same network"
            )
        for vdi, sr in vmap.items():
            rec = db.get("VDI", vdi)
            if sr != rec["SR"]:
                if rec["cbt_enabled"]:
                    raise errors.XapiError("VDI_CBT_ENABLED", vdi)
                if "key_hash" in rec["sm_config"]:
                    raise errors.XapiError("VDI_IS_ENCRYPTED", vdi)
                if db.get("SR", sr)["content_type"] == "iso":
                    raise errors.XapiError("SR_DOES_NOT_SUPPORT_MIGRATION", sr, "VDI_MIRROR_IN")
    return host


def disk_seconds(pool: PoolState, vdis: list[str]) -> float:
    """How long the simulated mirror of `vdis` takes: their used bytes at storage_mib_s."""
    used = sum(int(pool.db.get("VDI", v)["physical_utilisation"]) for v in vdis)
    rate = pool.storage_mib_s * MIB
    return used / rate if rate > 0 else 0.0


def migrate_send(
    pool: PoolState,
    task: str | None,
    vm: str,
    dest: object,
    live: bool,
    vdi_map: object,
    vif_map: object,
    options: dict[str, Any],
) -> str:
    """message_forwarding.ml's migrate_send: migrate_send in VM.current_operations, the
    assert_can_migrate subtask, the destination's vm_migrate host operation while it runs
    (allocate_vm_to_host), then xapi_vm_migrate.migrate_send': disks, then memory."""
    db = pool.db
    with ops.operation(pool, task, vm, "migrate_send") as key:
        dest_host = assert_can_migrate(pool, vm, dest, vdi_map, vif_map, options)
        vmap = {str(k): str(v) for k, v in dict(vdi_map).items()}  # type: ignore[call-overload]
        with db.lock:
            source = db.get("VM", vm)["resident_on"]
            running = db.get("VM", vm)["power_state"] == "Running"
            if str(options.get("copy", "")).lower() == "true":
                raise errors.operation_not_allowed(
                    "Copy mode is disallowed on intra pool storage migration, try efficient alternatives, "
                    "for example, VM.copy/clone."
                )
            if "network" in options:
                _assert_migration_network(pool, str(options["network"]), dest_host)
            host_lifecycle.begin(db, dest_host, key, "vm_migrate")
            if running and dest_host != source:
                pool.memory.reserve(dest_host, vm, vm_needs(db.get("VM", vm)))
                db.set("VM", vm, scheduled_to_be_resident_on=dest_host)
            pool.tasks.set_cancellable(task, True)
        created: dict[str, str] = {}  # old VDI -> its mirror on the destination SR
        try:
            moving = [v for _, v in _vm_vdis(pool, vm) if vmap[v] != db.get("VDI", v)["SR"]]
            for vdi in moving:
                sr = vmap[vdi]
                if not ops.host_sees_sr(pool, dest_host, sr):
                    # Storage_migrate: the SM on the destination has no attached PBD for the SR
                    raise errors.XapiError("SR_NOT_ATTACHED", db.get("SR", sr)["uuid"])
                created[vdi] = devices.copy_vdi(db, vdi, sr)
            disks_s = disk_seconds(pool, moving)
            memory_s = max(float(pool.migration_seconds), 0.0) if running else 0.0
            _run_phases(pool, task, vm, disks_s, memory_s, running)
        except BaseException:
            for new in created.values():
                if db.exists("VDI", new):
                    devices.destroy_vdi(db, new)
            pool.memory.release(dest_host, vm)
            if db.exists("VM", vm):
                db.set("VM", vm, scheduled_to_be_resident_on=NULL_REF)
            raise
        else:
            with db.lock:
                _switch_disks(pool, vm, created)
                pool.memory.release(dest_host, vm, refresh=False)
                if running:
                    ops.move_resident(pool, vm, dest_host)
                lifecycle.update_allowed(db, vm)
        finally:
            host_lifecycle.end(db, dest_host, key)
    if running and source != dest_host:
        _migrated_message(pool, vm, source, dest_host)
    return vm


def _switch_disks(pool: PoolState, vm: str, created: dict[str, str]) -> None:
    """The VBDs take the mirrors; the old VDIs, with no VBD left, are destroyed (as xapi does
    for an intra-pool storage migration)."""
    db = pool.db
    for old, new in created.items():
        for vbd in list(db.get("VDI", old)["VBDs"]):
            if db.get("VBD", vbd)["VM"] != vm:
                continue
            db.set("VBD", vbd, VDI=new)
            db.remove_from("VDI", old, "VBDs", vbd)
            db.add_to("VDI", new, "VBDs", vbd)
        if not db.get("VDI", old)["VBDs"]:
            devices.destroy_vdi(db, old)


def _run_phases(pool: PoolState, task: str | None, vm: str, disks_s: float, memory_s: float, running: bool) -> None:
    """Progress 0..disk share: the mirrors (cancellable); then the memory as pool_migrate's
    pre-copy (cancellable) and stop-and-copy (not)."""
    total = disks_s + memory_s
    if total <= 0:
        return
    disk_share = disks_s / total
    tick = min(0.25, max(0.02, total / 40))
    started = time.monotonic()
    cancellable = True
    while True:
        fraction = (time.monotonic() - started) / total
        past_disks = fraction >= disk_share
        memory_fraction = (fraction - disk_share) / (1 - disk_share) if past_disks and disk_share < 1 else 0.0
        if cancellable and past_disks and memory_fraction >= COPY_END and memory_s > 0:
            pool.tasks.set_cancellable(task, False)
            cancellable = False
        if fraction >= 1.0:
            break
        pool.tasks.set_progress(task, fraction * 0.99)
        pool.tasks.sleep(task, tick)
        state = pool.db.field("VM", vm, "power_state")
        if running and state != "Running":
            raise errors.vm_bad_power_state(vm, ["Running"], state)


def vdi_pool_migrate(pool: PoolState, task: str | None, vdi: str, sr: str, options: dict[str, Any]) -> str:
    """VDI.pool_migrate: one disk of a VM to `sr`, its other disks staying, by a storage
    migration of the VM to the host it runs on (xapi prefers the local host; the simulator's
    VM is resident somewhere that sees both SRs or the call fails as migrate_send does)."""
    db = pool.db
    with db.lock:
        rec = db.get("VDI", vdi)
        db.get("SR", sr)
        if rec["type"] == "cbt_metadata":
            raise errors.XapiError("VDI_INCOMPATIBLE_TYPE", vdi, "cbt_metadata")
        if rec["cbt_enabled"]:
            raise errors.XapiError("VDI_CBT_ENABLED", vdi)
        if not rec["VBDs"]:
            raise errors.XapiError("VDI_NEEDS_VM_FOR_MIGRATE", vdi)
        vbd = rec["VBDs"][0]
        vm = db.get("VBD", vbd)["VM"]
        host = db.get("VM", vm)["resident_on"]
        if host == NULL_REF:
            host = pool.master
        vdi_map = {v: db.get("VDI", v)["SR"] for _, v in _vm_vdis(pool, vm)}
        vdi_map[vdi] = sr
        # the management interface's network (Xapi_inventory's management_interface)
        network = next((r["network"] for r in db.tables["PIF"].values() if r["host"] == host and r["management"]), None)
        if network is None:
            raise errors.XapiError("HOST_HAS_NO_MANAGEMENT_IP")
    dest = migrate_receive(pool, None, host, network)
    try:
        migrate_send(pool, task, vm, dest, True, vdi_map, {}, {})
    finally:
        pool.sessions.logout(dest["session_id"])
    return str(db.field("VBD", vbd, "VDI"))
