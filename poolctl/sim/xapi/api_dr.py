"""Metadata replication for disaster recovery (xapi_sr.ml, xapi_vdi_helpers.ml): the pool's
database written to a "Metadata for DR" VDI on an SR every host sees, through a VBD of the
master's control domain, with metadata_latest true while the redo log runs.

What the VDI holds is this pool's database, so read_database_pool_uuid names this pool."""

from __future__ import annotations

from . import devices, errors
from .api_ha import REDO_LOG_SIZE
from .registry import Context, api

_MAX_REDO_LOGS = 8  # Xapi_globs.redo_log_max_instances
# SM drivers whose capabilities include SR_METADATA (LVHDSR and its iSCSI/HBA variants, EXTSR, NFSSR)
_SR_METADATA = ("lvm", "lvmoiscsi", "lvmohba", "ext", "nfs")


def _pool(ctx: Context) -> str:
    return ctx.db.refs("pool")[0]


def _assert_supports(ctx: Context, sr: str) -> None:
    db = ctx.db
    rec = db.get("SR", sr)
    connected = {db.get("PBD", p)["host"] for p in rec["PBDs"]}
    if len(connected) < len(db.tables["host"]):
        raise errors.XapiError("SR_NO_PBDS", sr)
    for pbd in rec["PBDs"]:
        if not db.get("PBD", pbd)["currently_attached"]:
            raise errors.XapiError("SR_NO_PBDS", sr)
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
