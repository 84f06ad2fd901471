"""PBD.create/destroy/plug/unplug and SR.scan/update (xapi_pbd.ml, xapi_sr.ml): a PBD is one
host's attachment of an SR; unplugging it while a running VM on that host uses one of the SR's
disks is VDI_IN_USE [vdis]; SR.scan recomputes the SR's usage from its VDIs."""

from __future__ import annotations

from . import devices, errors
from .api_vm_copies import record_fields
from .db import NULL_REF
from .registry import Context, api
from .schema import new_record


@api("PBD.create", "args")
def pbd_create(ctx: Context, args: object) -> str:
    fields = record_fields("PBD", args)
    host, sr = fields.get("host", NULL_REF), fields.get("SR", NULL_REF)
    db = ctx.db
    with db.lock:
        db.get("host", host)
        srec = db.get("SR", sr)
        for pbd in srec["PBDs"]:
            if db.get("PBD", pbd)["host"] == host:
                raise errors.XapiError("PBD_EXISTS", sr, host, pbd)
        if "SRmaster" in fields.get("device_config", {}):
            raise errors.XapiError(
                "VALUE_NOT_SUPPORTED",
                "SRmaster",
                fields["device_config"]["SRmaster"],
                "This key is for internal use only",
            )
        ref = db.create("PBD", new_record("PBD", **{**fields, "currently_attached": False}))
        db.set("SR", sr, PBDs=[*srec["PBDs"], ref])
        db.set("host", host, PBDs=[*db.get("host", host)["PBDs"], ref])
        return ref


@api("PBD.destroy", "self")
def pbd_destroy(ctx: Context, self: str) -> None:
    db = ctx.db
    with db.lock:
        rec = db.get("PBD", self)
        if rec["currently_attached"]:
            raise errors.operation_not_allowed("PBD is currently attached")
        db.destroy("PBD", self)
        for cls, ref in (("SR", rec["SR"]), ("host", rec["host"])):
            if db.exists(cls, ref):
                db.set(cls, ref, PBDs=[p for p in db.get(cls, ref)["PBDs"] if p != self])


def _active_vdis(ctx: Context, pbd: str) -> list[str]:
    """Disks of the PBD's SR attached to VMs running on the PBD's host."""
    db = ctx.db
    rec = db.get("PBD", pbd)
    out = []
    for vdi in db.get("SR", rec["SR"])["VDIs"]:
        for vbd in db.get("VDI", vdi)["VBDs"]:
            v = db.get("VBD", vbd)
            vm = db.tables["VM"].get(v["VM"])
            if v["currently_attached"] and vm is not None and vm["resident_on"] == rec["host"]:
                out.append(vdi)
                break
    return out


def _iscsi_sessions(ctx: Context, pbd: str, value: str | None) -> None:
    """BaseISCSI.attach records the sessions it logged in (other_config iscsi_sessions) and
    sr_detach removes the key."""
    if ctx.db.get("SR", ctx.db.get("PBD", pbd)["SR"])["type"] == "lvmoiscsi":
        ctx.db.set_key("PBD", pbd, "other_config", "iscsi_sessions", value)


@api("PBD.plug", "self")
def pbd_plug(ctx: Context, self: str) -> None:
    with ctx.db.lock:
        ctx.db.get("PBD", self)
        ctx.db.set("PBD", self, currently_attached=True)
        _iscsi_sessions(ctx, self, "1")


@api("PBD.unplug", "self")
def pbd_unplug(ctx: Context, self: str) -> None:
    with ctx.db.lock:
        ctx.db.get("PBD", self)
        busy = _active_vdis(ctx, self)
        if busy:
            raise errors.XapiError("VDI_IN_USE", *busy)
        ctx.db.set("PBD", self, currently_attached=False)
        _iscsi_sessions(ctx, self, None)


@api("SR.scan", "sr")
def sr_scan(ctx: Context, sr: str) -> None:
    with ctx.db.lock:
        rec = ctx.db.get("SR", sr)
        if not any(ctx.db.get("PBD", p)["currently_attached"] for p in rec["PBDs"]):
            raise errors.XapiError("SR_HAS_NO_PBDS", sr)
        devices._sr_usage(ctx.db, sr)


@api("SR.update", "sr")
def sr_update(ctx: Context, sr: str) -> None:
    sr_scan(ctx, sr)


@api("SR.get_supported_types", session=True, async_ok=False)
def sr_get_supported_types(ctx: Context) -> list[str]:
    with ctx.db.lock:
        found = {rec["type"] for rec in ctx.db.tables["SR"].values()}
    return sorted(found | {"lvm", "ext", "nfs", "lvmoiscsi", "iso"})
