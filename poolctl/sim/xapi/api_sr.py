"""SR.create/introduce/forget/destroy and a few VDI calls (xapi_sr.ml, xapi_vdi.ml). A
simulated SR is only bookkeeping: create makes it (plugged PBDs on the host, or on every host
when shared); forget drops the records (SR_HAS_PBD while a PBD is plugged); destroy also
deletes its disks (VDI_IN_USE while a running VM uses one)."""

from __future__ import annotations

from . import datamodel, devices, errors
from .db import NULL_REF
from .registry import Context, api
from .schema import new_record

_DRIVERS = ("lvm", "ext", "nfs", "lvmoiscsi", "lvmohba", "iso", "smb", "cifs", "file", "udev", "dummy", "gfs2", "zfs")


def _new_sr(
    ctx: Context,
    uuid: str,
    name_label: str,
    name_description: str,
    type: str,
    content_type: str,
    shared: bool,
    sm_config: object,
    size: int,
) -> str:
    if type not in _DRIVERS:
        raise errors.XapiError("SR_UNKNOWN_DRIVER", type)
    config = datamodel.coerce("(string -> string) map", sm_config, "SR", "sm_config")
    fields = dict(
        name_label=str(name_label),
        name_description=str(name_description),
        type=str(type),
        content_type=str(content_type),
        shared=bool(shared),
        sm_config=config,
        physical_size=size,
    )
    rec = new_record("SR", **fields)
    if uuid:
        rec["uuid"] = uuid
    return ctx.db.create("SR", rec)


@api(
    "SR.create",
    "host",
    "device_config",
    "physical_size",
    "name_label",
    "name_description",
    "type",
    "content_type",
    "shared",
    "sm_config",
)
def create(
    ctx: Context,
    host: str,
    device_config: object,
    physical_size: object,
    name_label: str,
    name_description: str,
    type: str,
    content_type: str,
    shared: bool,
    sm_config: object,
) -> str:
    db = ctx.db
    config = datamodel.coerce("(string -> string) map", device_config, "PBD", "device_config")
    size = datamodel.coerce("int", physical_size, "SR", "physical_size")
    with db.lock:
        db.get("host", host)
        sr = _new_sr(ctx, "", name_label, name_description, type, content_type, bool(shared), sm_config, size)
        hosts = db.refs("host") if shared else [host]
        pbds = []
        for h in hosts:
            pbd = db.create("PBD", new_record("PBD", host=h, SR=sr, device_config=config, currently_attached=True))
            db.set("host", h, PBDs=[*db.get("host", h)["PBDs"], pbd])
            pbds.append(pbd)
        db.set("SR", sr, PBDs=pbds)
        return sr


@api("SR.introduce", "uuid", "name_label", "name_description", "type", "content_type", "shared", "sm_config")
def introduce(
    ctx: Context,
    uuid: str,
    name_label: str,
    name_description: str,
    type: str,
    content_type: str,
    shared: bool,
    sm_config: object,
) -> str:
    with ctx.db.lock:
        if uuid:
            try:
                ctx.db.by_uuid("SR", str(uuid))
            except errors.XapiError:
                pass
            else:
                raise errors.XapiError("SR_UUID_EXISTS", uuid)
        return _new_sr(ctx, str(uuid), name_label, name_description, type, content_type, bool(shared), sm_config, 0)


def _drop(ctx: Context, sr: str, delete_disks: bool) -> None:
    db = ctx.db
    rec = db.get("SR", sr)
    if delete_disks:
        for vdi in list(rec["VDIs"]):
            devices.destroy_vdi(db, vdi)
    else:
        for vdi in list(rec["VDIs"]):
            for vbd in db.get("VDI", vdi)["VBDs"]:
                if db.exists("VBD", vbd):
                    db.set("VBD", vbd, VDI=NULL_REF, empty=True)
            db.destroy("VDI", vdi)
    for pbd in rec["PBDs"]:
        host = db.get("PBD", pbd)["host"]
        db.destroy("PBD", pbd)
        if db.exists("host", host):
            db.set("host", host, PBDs=[p for p in db.get("host", host)["PBDs"] if p != pbd])
    db.destroy("SR", sr)


@api("SR.forget", "sr")
def forget(ctx: Context, sr: str) -> None:
    with ctx.db.lock:
        plugged = [p for p in ctx.db.get("SR", sr)["PBDs"] if ctx.db.get("PBD", p)["currently_attached"]]
        if plugged:
            raise errors.XapiError("SR_HAS_PBD", sr)
        _drop(ctx, sr, delete_disks=False)


@api("SR.destroy", "sr")
def destroy(ctx: Context, sr: str) -> None:
    with ctx.db.lock:
        rec = ctx.db.get("SR", sr)
        for vdi in rec["VDIs"]:
            for vbd in ctx.db.get("VDI", vdi)["VBDs"]:
                if ctx.db.get("VBD", vbd)["currently_attached"]:
                    raise errors.XapiError("VDI_IN_USE", vdi, "destroy")
        _drop(ctx, sr, delete_disks=True)


@api("VDI.resize_online", "vdi", "size")
def resize_online(ctx: Context, vdi: str, size: object) -> None:
    from .api_devices import vdi_resize

    vdi_resize(ctx, vdi, size)


@api("VDI.enable_cbt", "self")
def enable_cbt(ctx: Context, self: str) -> None:
    ctx.db.set("VDI", self, cbt_enabled=True)


@api("VDI.disable_cbt", "self")
def disable_cbt(ctx: Context, self: str) -> None:
    ctx.db.set("VDI", self, cbt_enabled=False)


@api("VDI.get_nbd_info", "self")
def get_nbd_info(ctx: Context, self: str) -> list[object]:
    """Xapi_vdi.get_nbd_info: one entry per host network with purpose nbd/insecure_nbd that can
    reach the disk; none of the simulated networks has such a purpose unless a client adds it."""
    db = ctx.db
    with db.lock:
        db.get("VDI", self)
        nbd = [n for n, r in db.tables["network"].items() if {"nbd", "insecure_nbd"} & set(r["purpose"])]
    if nbd:
        raise errors.not_implemented("VDI.get_nbd_info")  # no NBD server to describe
    return []
