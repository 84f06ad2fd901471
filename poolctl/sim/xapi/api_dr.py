"""Metadata replication for disaster recovery (xapi_sr.ml, xapi_vdi_helpers.ml): the pool's
database written to a "Metadata for DR" VDI on an SR every host sees, through a VBD of the
master's control domain, with metadata_latest true while the redo log runs.

What the VDI holds is this pool's database, so read_database_pool_uuid names this pool."""

from __future__ import annotations

import copy

from . import datamodel, devices, dr_sessions, errors
from .api_ha import REDO_LOG_SIZE, assert_plugged_on_every_host
from .db import Database
from .registry import Context, api
from .schema import fields_of as schema_fields
from .schema import new_record
from .state import PoolState

_MAX_REDO_LOGS = 8  # Xapi_globs.redo_log_max_instances
# SM drivers whose capabilities include SR_METADATA (LVHDSR and its iSCSI/HBA variants, EXTSR, NFSSR)
_SR_METADATA = ("lvm", "lvmoiscsi", "lvmohba", "ext", "nfs")


def _pool(ctx: Context) -> str:
    return ctx.db.refs("pool")[0]


def _assert_supports(ctx: Context, sr: str) -> None:
    assert_plugged_on_every_host(ctx, sr)
    rec = ctx.db.get("SR", sr)
    if rec["type"] not in _SR_METADATA:
        raise errors.XapiError("SR_OPERATION_NOT_SUPPORTED", sr)


@api("SR.assert_supports_database_replication", "sr")
def assert_supports_database_replication(ctx: Context, sr: str) -> None:
    with ctx.db.lock:
        _assert_supports(ctx, sr)


def _replicating(ctx: Context) -> dict[str, str]:
    """metadata VDI -> the dom0 VBD its redo log writes through (xapi's metadata_replication)."""
    return ctx.pool.settings.setdefault("dr_replication", {})  # type: ignore[return-value]


def _metadata_vdis(ctx: Context, sr: str) -> list[str]:
    db = ctx.db
    pool = _pool(ctx)
    return [
        v
        for v in db.get("SR", sr)["VDIs"]
        if db.get("VDI", v)["type"] == "metadata" and db.get("VDI", v)["metadata_of_pool"] == pool
    ]


@api("SR.enable_database_replication", "sr")
def enable_database_replication(ctx: Context, sr: str) -> None:
    db = ctx.db
    with db.lock:
        _assert_supports(ctx, sr)
        replicating = _replicating(ctx)
        if len(replicating) >= _MAX_REDO_LOGS:
            raise errors.XapiError("NO_MORE_REDO_LOGS_ALLOWED")
        pool = _pool(ctx)
        usable = [v for v in _metadata_vdis(ctx, sr) if db.get("VDI", v)["virtual_size"] >= REDO_LOG_SIZE]
        if usable:
            vdi = usable[0]
        else:
            vdi = devices.create_vdi(
                db,
                {
                    "name_label": "Metadata for DR",
                    "name_description": "Used for disaster recovery",
                    "SR": sr,
                    "virtual_size": REDO_LOG_SIZE,
                    "type": "metadata",
                    "sm_config": {"type": "raw"},  # Redo_log.redo_log_sm_config
                },
            )
            db.set("VDI", vdi, metadata_of_pool=pool, metadata_latest=False)
            db.add_to("pool", pool, "metadata_VDIs", vdi)
        if vdi in replicating:
            return
        for vbd in list(db.get("VDI", vdi)["VBDs"]):  # stale VBDs of an earlier replication
            _unplug_and_destroy(ctx, vbd)
        dom0 = db.get("host", ctx.pool.master)["control_domain"]
        vbd = devices.create_vbd(
            db, {"VM": dom0, "VDI": vdi, "userdevice": "autodetect", "mode": "RW", "type": "Disk", "unpluggable": True}
        )
        db.set(
            "VBD", vbd, currently_attached=True, device=f"xvd{chr(ord('a') + int(db.get('VBD', vbd)['userdevice']))}"
        )
        replicating[vdi] = vbd
        db.set("VDI", vdi, metadata_latest=True)  # the redo log has flushed the database to it


def _unplug_and_destroy(ctx: Context, vbd: str) -> None:
    """Xapi_vdi_helpers.destroy_all_vbds (Attach_helpers.safe_unplug, then destroy)."""
    ctx.db.set("VBD", vbd, currently_attached=False)
    devices.destroy_vbd(ctx.db, vbd)


@api("SR.disable_database_replication", "sr")
def disable_database_replication(ctx: Context, sr: str) -> None:
    """Every metadata VDI of this pool on the SR: the redo log stops, its VBDs go, the VDI goes."""
    db = ctx.db
    with db.lock:
        db.get("SR", sr)
        pool = _pool(ctx)
        replicating = _replicating(ctx)
        for vdi in _metadata_vdis(ctx, sr):
            replicating.pop(vdi, None)
            db.set("VDI", vdi, metadata_latest=False)
            for vbd in list(db.get("VDI", vdi)["VBDs"]):
                _unplug_and_destroy(ctx, vbd)
            db.remove_from("pool", pool, "metadata_VDIs", vdi)
            devices.destroy_vdi(db, vdi)


@api("VDI.read_database_pool_uuid", "self")
def read_database_pool_uuid(ctx: Context, self: str) -> str:
    """Xapi_dr.read_vdi_cache_record: the pool whose database the VDI holds, "" if none."""
    with ctx.db.lock:
        rec = ctx.db.get("VDI", self)
        pool = rec["metadata_of_pool"]
        if rec["type"] != "metadata" or not ctx.db.exists("pool", pool):
            return ""
        return str(ctx.db.get("pool", pool)["uuid"])


# -- recovery from a metadata VDI (xapi_vdi.open_database, xapi_dr.ml, import.ml) ---------------
def _origin(ctx: Context) -> PoolState:
    """The pool the foreign database was opened from (whose sessions session_to names)."""
    origin = ctx.pool.settings.get("dr_origin")
    return origin if isinstance(origin, PoolState) else ctx.pool


@api("VDI.open_database", "self")
def open_database(ctx: Context, self: str) -> str:
    """A read-only session on the database the metadata VDI holds (this pool's, replicated)."""
    db = ctx.db
    with db.lock:
        rec = db.get("VDI", self)
        if rec["type"] != "metadata" or not db.exists("pool", rec["metadata_of_pool"]):
            raise errors.XapiError("COULD_NOT_IMPORT_DATABASE", "Database does not match local schema.")
        copy_db = dr_sessions.clone_database(db)
    other = PoolState(copy_db, master=ctx.pool.master, host_refs={}, guests={}, password=ctx.pool.password)
    other.settings["dr_origin"] = ctx.pool
    session = ctx.pool.sessions.login("disaster-recovery", ctx.host, "")
    dr_sessions.foreign(ctx.pool)[session] = other
    return session


def _required_srs(ctx: Context, vm: str) -> list[str]:
    """Xapi_vm_helpers.list_required_SRs: the SRs of the VM's disks, ISO libraries left out."""
    db = ctx.db
    out: list[str] = []
    for vbd in db.get("VM", vm)["VBDs"]:
        vdi = db.get("VBD", vbd)["VDI"]
        if vdi == datamodel.NULL or not db.exists("VDI", vdi):
            continue
        sr = db.get("VDI", vdi)["SR"]
        if db.get("SR", sr)["content_type"] != "iso" and sr not in out:
            out.append(sr)
    return out


def _local_sr_attached(local: PoolState, uuid: str) -> bool:
    found = local.db.find("SR", lambda r: r["uuid"] == uuid)
    return bool(found) and any(
        local.db.get("PBD", p)["currently_attached"] for p in local.db.get("SR", found[0])["PBDs"]
    )


def _session_to(ctx: Context, session_to: str, action: str) -> PoolState:
    local = _origin(ctx)
    local.sessions.check(session_to)
    if session_to in dr_sessions.foreign(local):  # Xapi_dr.assert_session_allows_dr
        raise errors.XapiError(
            "RBAC_PERMISSION_DENIED",
            action,
            "The supplied session does not have the required permissions for VM recovery.",
        )
    return local


@api("VM.get_SRs_required_for_recovery", "self", "session_to")
def get_srs_required_for_recovery(ctx: Context, self: str, session_to: str) -> list[str]:
    local = _session_to(ctx, session_to, "VM.get_SRs_required_for_recovery")
    with ctx.db.lock, local.db.lock:
        return [sr for sr in _required_srs(ctx, self) if not _local_sr_attached(local, ctx.db.get("SR", sr)["uuid"])]


def _assert_can_be_recovered(ctx: Context, local: PoolState, vm: str) -> None:
    for sr in _required_srs(ctx, vm):
        if not _local_sr_attached(local, ctx.db.get("SR", sr)["uuid"]):
            raise errors.XapiError("VM_REQUIRES_SR", vm, sr)


@api("VM.assert_can_be_recovered", "self", "session_to")
def assert_can_be_recovered(ctx: Context, self: str, session_to: str) -> None:
    local = _session_to(ctx, session_to, "VM.assert_can_be_recovered")
    with ctx.db.lock, local.db.lock:
        _assert_can_be_recovered(ctx, local, self)


def _by_uuid(db: Database, cls: str, uuid: str) -> list[str]:
    return [ref for ref, r in db.tables[cls].items() if r["uuid"] == uuid]


_NOT_IMPORTED = (
    "VBDs",
    "VIFs",
    "consoles",
    "crash_dumps",
    "attached_PCIs",
    "VGPUs",
    "VUSBs",
    "VTPMs",
    "snapshots",
    "children",
    "current_operations",
    "allowed_operations",
    "blocked_operations",
    "blobs",
    "tags",
)


@api("VM.recover", "self", "session_to", "force")
def recover(ctx: Context, self: str, session_to: str, force: object) -> None:
    """Xapi_dr.recover_vms: a metadata import into session_to's pool keeping the VM's uuid; the
    disks must already be there (the SR is attached and holds the VDIs, found by uuid)."""
    from . import lifecycle
    from .api_vm_copies import _destroy
    from .registry import Context as Ctx

    forced = datamodel.coerce("bool", force, "VM", "force")
    local = _session_to(ctx, session_to, "VM.recover")
    src, dst = ctx.db, local.db
    with src.lock, dst.lock:
        _assert_can_be_recovered(ctx, local, self)
        rec = src.get("VM", self)
        existing = dst.find("VM", lambda r: r["uuid"] == rec["uuid"])
        if existing:
            old = dst.get("VM", existing[0])
            if old["power_state"] != "Halted":
                if forced:
                    return  # a forced import skips a VM it cannot replace
                raise errors.XapiError("VM_BAD_POWER_STATE", existing[0], "halted", old["power_state"].lower())
            if old["version"] >= rec["version"] and not forced:
                raise errors.XapiError("VM_TO_IMPORT_IS_NOT_NEWER_VERSION", existing[0], old["version"], rec["version"])
        disks = []
        for vbd in rec["VBDs"]:
            vbd_rec = src.get("VBD", vbd)
            vdi = datamodel.NULL
            if vbd_rec["VDI"] != datamodel.NULL and src.exists("VDI", vbd_rec["VDI"]):
                uuid = src.get("VDI", vbd_rec["VDI"])["uuid"]
                found = _by_uuid(dst, "VDI", uuid)
                if not found:
                    raise errors.XapiError("IMPORT_ERROR_FAILED_TO_FIND_OBJECT", uuid)
                vdi = found[0]
            disks.append((vbd_rec, vdi))
        if existing:
            _destroy(Ctx(local, local.master), existing[0])
        fields = {k: copy.deepcopy(v) for k, v in rec.items() if k not in _NOT_IMPORTED and k != "uuid"}
        state = rec["power_state"] if rec["power_state"] in ("Halted", "Suspended") else "Halted"
        affinity = rec["affinity"]
        if affinity != datamodel.NULL and src.exists("host", affinity):
            hosts = dst.find("host", lambda r: r["uuid"] == src.get("host", affinity)["uuid"])
            affinity = hosts[0] if hosts else datamodel.NULL
        metrics = dst.create("VM_metrics", new_record("VM_metrics"))
        fields.update(
            power_state=state,
            resident_on=datamodel.NULL,
            scheduled_to_be_resident_on=datamodel.NULL,
            affinity=affinity,
            domid=-1,
            metrics=metrics,
            guest_metrics=datamodel.NULL,
            parent=datamodel.NULL,
            snapshot_of=datamodel.NULL,
            suspend_VDI=datamodel.NULL,
            appliance=datamodel.NULL,
            protection_policy=datamodel.NULL,
            snapshot_schedule=datamodel.NULL,
            groups=[],
        )
        record = new_record("VM", **{k: v for k, v in fields.items() if k in schema_fields("VM")})
        record["uuid"] = rec["uuid"]
        vm = dst.create("VM", record)
        for vbd_rec, vdi in disks:
            keep = ("userdevice", "bootable", "mode", "type", "unpluggable", "other_config", "qos_algorithm_type")
            devices.create_vbd(dst, {"VM": vm, "VDI": vdi, **{k: copy.deepcopy(vbd_rec[k]) for k in keep}})
        for vif in rec["VIFs"]:
            vif_rec = src.get("VIF", vif)
            net = src.get("network", vif_rec["network"])
            nets = _by_uuid(dst, "network", net["uuid"]) or [
                n for n, r in dst.tables["network"].items() if r["bridge"] == net["bridge"]
            ]
            network = (
                nets[0]
                if nets
                else dst.create(
                    "network", new_record("network", name_label=net["name_label"], bridge=net["bridge"], MTU=net["MTU"])
                )
            )
            devices.create_vif(
                dst,
                {
                    "VM": vm,
                    "network": network,
                    "device": vif_rec["device"],
                    "MAC": vif_rec["MAC"],
                    "MTU": vif_rec["MTU"],
                },
            )
        lifecycle.update_allowed(dst, vm)
