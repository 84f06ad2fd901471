"""VBD, VIF, VDI, network and console creation and removal, plug/unplug and CD insert/eject,
with xapi's errors (DEVICE_ALREADY_EXISTS, DEVICE_ALREADY_ATTACHED/DETACHED, VBD_NOT_EMPTY,
VBD_IS_EMPTY, VBD_NOT_REMOVABLE_MEDIA, VDI_IN_USE, SR_FULL)."""

from __future__ import annotations

from . import datamodel, devices, errors
from .api_vm_copies import record_fields
from .db import NULL_REF
from .registry import Context, api
from .schema import new_record


def _running(ctx: Context, vm: str) -> None:
    state = ctx.db.get("VM", vm)["power_state"]
    if state != "Running":
        raise errors.vm_bad_power_state(vm, ["Running"], state)


def _plug(ctx: Context, cls: str, ref: str, attached: bool) -> None:
    with ctx.db.lock:
        rec = ctx.db.get(cls, ref)
        _running(ctx, rec["VM"])
        if rec["currently_attached"] == attached:
            raise errors.XapiError("DEVICE_ALREADY_ATTACHED" if attached else "DEVICE_ALREADY_DETACHED", ref)
        if cls == "VBD" and not attached and not rec["unpluggable"]:
            raise errors.XapiError("VBD_NOT_UNPLUGGABLE", ref)
        ctx.db.set(cls, ref, currently_attached=attached and not rec.get("empty", False))


# -- VBD ----------------------------------------------------------------------------------------
@api("VBD.create", "args")
def vbd_create(ctx: Context, args: object) -> str:
    fields = record_fields("VBD", args)
    for k in ("currently_attached", "status_code", "status_detail", "metrics", "allowed_operations"):
        fields.pop(k, None)
    if "VM" not in fields:
        raise errors.field_type_error("VM")
    return devices.create_vbd(ctx.db, fields)


@api("VBD.destroy", "self")
def vbd_destroy(ctx: Context, self: str) -> None:
    devices.destroy_vbd(ctx.db, self)


@api("VBD.plug", "self")
def vbd_plug(ctx: Context, self: str) -> None:
    _plug(ctx, "VBD", self, True)


@api("VBD.unplug", "self")
def vbd_unplug(ctx: Context, self: str) -> None:
    _plug(ctx, "VBD", self, False)


@api("VBD.unplug_force", "self")
def vbd_unplug_force(ctx: Context, self: str) -> None:
    with ctx.db.lock:
        rec = ctx.db.get("VBD", self)
        if not rec["currently_attached"]:
            raise errors.XapiError("DEVICE_ALREADY_DETACHED", self)
        ctx.db.set("VBD", self, currently_attached=False)


@api("VBD.assert_attachable", "self")
def vbd_assert_attachable(ctx: Context, self: str) -> None:
    with ctx.db.lock:
        rec = ctx.db.get("VBD", self)
        if rec["VDI"] != NULL_REF and ctx.db.get("VDI", rec["VDI"])["missing"]:
            raise errors.XapiError("VDI_MISSING", ctx.db.get("VDI", rec["VDI"])["SR"], rec["VDI"])


@api("VBD.insert", "vbd", "vdi")
def vbd_insert(ctx: Context, vbd: str, vdi: str) -> None:
    with ctx.db.lock:
        rec = ctx.db.get("VBD", vbd)
        ctx.db.get("VDI", vdi)
        if rec["type"] not in ("CD", "Floppy"):
            raise errors.XapiError("VBD_NOT_REMOVABLE_MEDIA", vbd)
        if not rec["empty"]:
            raise errors.XapiError("VBD_NOT_EMPTY", vbd)
        running = ctx.db.get("VM", rec["VM"])["power_state"] == "Running"
        ctx.db.set("VBD", vbd, VDI=vdi, empty=False, currently_attached=running)
        ctx.db.set("VDI", vdi, VBDs=[*ctx.db.get("VDI", vdi)["VBDs"], vbd])


@api("VBD.eject", "vbd")
def vbd_eject(ctx: Context, vbd: str) -> None:
    with ctx.db.lock:
        rec = ctx.db.get("VBD", vbd)
        if rec["type"] not in ("CD", "Floppy"):
            raise errors.XapiError("VBD_NOT_REMOVABLE_MEDIA", vbd)
        if rec["empty"]:
            raise errors.XapiError("VBD_IS_EMPTY", vbd)
        vdi = rec["VDI"]
        ctx.db.set("VBD", vbd, VDI=NULL_REF, empty=True, currently_attached=False)
        if ctx.db.exists("VDI", vdi):
            ctx.db.set("VDI", vdi, VBDs=[v for v in ctx.db.get("VDI", vdi)["VBDs"] if v != vbd])


# -- VIF ----------------------------------------------------------------------------------------
@api("VIF.create", "args")
def vif_create(ctx: Context, args: object) -> str:
    fields = record_fields("VIF", args)
    for k in ("currently_attached", "status_code", "status_detail", "metrics", "allowed_operations"):
        fields.pop(k, None)
    if "VM" not in fields or "network" not in fields:
        raise errors.field_type_error("VM" if "VM" not in fields else "network")
    return devices.create_vif(ctx.db, fields)


@api("VIF.destroy", "self")
def vif_destroy(ctx: Context, self: str) -> None:
    devices.destroy_vif(ctx.db, self)


@api("VIF.plug", "self")
def vif_plug(ctx: Context, self: str) -> None:
    _plug(ctx, "VIF", self, True)


@api("VIF.unplug", "self")
def vif_unplug(ctx: Context, self: str) -> None:
    _plug(ctx, "VIF", self, False)


@api("VIF.unplug_force", "self")
def vif_unplug_force(ctx: Context, self: str) -> None:
    with ctx.db.lock:
        ctx.db.get("VIF", self)
        ctx.db.set("VIF", self, currently_attached=False)


@api("VIF.move", "self", "network")
def vif_move(ctx: Context, self: str, network: str) -> None:
    with ctx.db.lock:
        rec = ctx.db.get("VIF", self)
        new = ctx.db.get("network", network)
        old = rec["network"]
        if ctx.db.exists("network", old):
            ctx.db.set("network", old, VIFs=[v for v in ctx.db.get("network", old)["VIFs"] if v != self])
        ctx.db.set("network", network, VIFs=[*new["VIFs"], self])
        ctx.db.set("VIF", self, network=network)


# -- VDI ----------------------------------------------------------------------------------------
@api("VDI.create", "args")
def vdi_create(ctx: Context, args: object) -> str:
    fields = record_fields("VDI", args)
    keep = set(f.name for f in datamodel.fields("VDI") if f.qualifier != "RO/runtime") | {"SR", "virtual_size", "type"}
    fields = {k: v for k, v in fields.items() if k in keep}
    if "SR" not in fields:
        raise errors.field_type_error("SR")
    return devices.create_vdi(ctx.db, fields)


@api("VDI.destroy", "self")
def vdi_destroy(ctx: Context, self: str) -> None:
    devices.destroy_vdi(ctx.db, self)


@api("VDI.forget", "vdi")
def vdi_forget(ctx: Context, vdi: str) -> None:
    devices.destroy_vdi(ctx.db, vdi)


@api("VDI.copy", "vdi", "sr", "base_vdi", "into_vdi", optional=2)
def vdi_copy(ctx: Context, vdi: str, sr: str, base_vdi: str = NULL_REF, into_vdi: str = NULL_REF) -> str:
    if into_vdi != NULL_REF:  # copy into an existing disk: its size must do
        with ctx.db.lock:
            if ctx.db.get("VDI", into_vdi)["virtual_size"] < ctx.db.get("VDI", vdi)["virtual_size"]:
                raise errors.XapiError("VDI_TOO_SMALL", into_vdi, ctx.db.get("VDI", vdi)["virtual_size"])
        return str(into_vdi)
    return devices.copy_vdi(ctx.db, vdi, str(sr))


@api("VDI.clone", "vdi", "driver_params", optional=1)
def vdi_clone(ctx: Context, vdi: str, driver_params: object = None) -> str:
    return devices.copy_vdi(ctx.db, vdi)


@api("VDI.snapshot", "vdi", "driver_params", optional=1)
def vdi_snapshot(ctx: Context, vdi: str, driver_params: object = None) -> str:
    return devices.copy_vdi(ctx.db, vdi, snapshot=True)


@api("VDI.resize", "vdi", "size")
def vdi_resize(ctx: Context, vdi: str, size: object) -> None:
    new = datamodel.coerce("int", size, "VDI", "size")
    with ctx.db.lock:
        rec = ctx.db.get("VDI", vdi)
        if new < rec["virtual_size"]:
            raise errors.XapiError("VDI_TOO_SMALL", vdi, rec["virtual_size"])
        ctx.db.set("VDI", vdi, virtual_size=new, physical_utilisation=new)
        devices._sr_usage(ctx.db, rec["SR"])


@api("VDI.update", "vdi")
def vdi_update(ctx: Context, vdi: str) -> None:
    ctx.db.get("VDI", vdi)


# -- network, console -----------------------------------------------------------------------------
@api("network.create", "args")
def network_create(ctx: Context, args: object) -> str:
    fields = {k: v for k, v in record_fields("network", args).items() if k not in ("VIFs", "PIFs")}
    return ctx.db.create("network", new_record("network", **fields))


@api("network.destroy", "self")
def network_destroy(ctx: Context, self: str) -> None:
    with ctx.db.lock:
        rec = ctx.db.get("network", self)
        if rec["VIFs"] or rec["PIFs"]:
            raise errors.XapiError(
                "NETWORK_CONTAINS_VIF" if rec["VIFs"] else "NETWORK_CONTAINS_PIF", *(rec["VIFs"] or rec["PIFs"])
            )
        ctx.db.destroy("network", self)


@api("console.create", "args")
def console_create(ctx: Context, args: object) -> str:
    fields = record_fields("console", args)
    with ctx.db.lock:
        vm = fields.get("VM", NULL_REF)
        ref = ctx.db.create("console", new_record("console", **fields))
        if ctx.db.exists("VM", vm):
            ctx.db.set("VM", vm, consoles=[*ctx.db.get("VM", vm)["consoles"], ref])
        return ref


@api("console.destroy", "self")
def console_destroy(ctx: Context, self: str) -> None:
    with ctx.db.lock:
        vm = ctx.db.get("console", self)["VM"]
        ctx.db.destroy("console", self)
        if ctx.db.exists("VM", vm):
            ctx.db.set("VM", vm, consoles=[c for c in ctx.db.get("VM", vm)["consoles"] if c != self])
