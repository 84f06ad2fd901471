"""VM.create/destroy/clone/copy/snapshot/provision and the free device numbers, after
xapi_vm_clone.ml (copy_vm_record, clone) and xapi_vm.ml: a clone or copy is a new top-level VM
(parent NULL, fresh mac_seed) with copies of the disks and NICs; a snapshot is a template with
is_a_snapshot, snapshot_of and the original's parent, and becomes the original's parent."""

from __future__ import annotations

import re
import uuid as uuidlib
from typing import Any

from . import datamodel, devices, errors, lifecycle, ops
from .db import NULL_REF
from .registry import Context, api
from .schema import new_record, now

_NOT_COPIED = {
    "uuid",
    "allowed_operations",
    "current_operations",
    "blocked_operations",
    "VBDs",
    "VIFs",
    "consoles",
    "crash_dumps",
    "VTPMs",
    "VUSBs",
    "VGPUs",
    "attached_PCIs",
    "snapshots",
    "children",
    "metrics",
    "guest_metrics",
    "resident_on",
    "scheduled_to_be_resident_on",
    "suspend_VDI",
    "suspend_SR",
    "domid",
    "domarch",
    "groups",
}


def record_fields(cls: str, args: object, param: str = "args") -> dict[str, Any]:
    """The datamodel fields a create's record gives, typed; others are ignored as xapi's
    unmarshaller ignores unknown members."""
    if not isinstance(args, dict):
        raise errors.field_type_error(param)
    fields = datamodel.field_map(cls)
    return {k: datamodel.coerce(fields[k].type, v, cls, k) for k, v in args.items() if k in fields and k != "uuid"}


def _new_metrics(ctx: Context) -> str:
    return ctx.db.create("VM_metrics", new_record("VM_metrics", install_time=now(), last_updated=now()))


@api("VM.create", "args")
def create(ctx: Context, args: object) -> str:
    fields = {k: v for k, v in record_fields("VM", args).items() if k not in _NOT_COPIED}
    fields.update(power_state="Halted", metrics=_new_metrics(ctx))
    with ctx.db.lock:
        ref = ctx.db.create("VM", new_record("VM", **fields))
        lifecycle.update_allowed(ctx.db, ref)
    return ref


def _copy_record(ctx: Context, vm: str, name: str, op: str) -> str:
    db = ctx.db
    src = db.get("VM", vm)
    snapshot = op == "snapshot"
    fields = {k: v for k, v in src.items() if k not in _NOT_COPIED}
    other = dict(src["other_config"])
    if not snapshot:
        other["mac_seed"] = str(uuidlib.uuid4())
    other.pop("default_template", None)
    other.pop("xensource_internal", None)
    if src["is_a_template"] and "base_template_name" not in other:
        other["base_template_name"] = src["name_label"]
    fields.update(
        name_label=name,
        power_state="Halted",
        other_config=other,
        is_a_template=snapshot or src["is_a_template"],
        is_default_template=False,
        is_a_snapshot=snapshot,
        snapshot_of=vm if snapshot else NULL_REF,
        snapshot_time=now() if snapshot else datamodel.EPOCH,
        snapshot_info={"disk-snapshot-type": "crash_consistent", "power-state-at-snapshot": src["power_state"]}
        if snapshot
        else {},
        transportable_snapshot_id="",
        parent=src["parent"] if snapshot else NULL_REF,
        requires_reboot=False,
        pending_guidances=[],
        metrics=_new_metrics(ctx),
        version=0,
    )
    ref = db.create("VM", new_record("VM", **fields))
    if snapshot:
        db.set("VM", vm, parent=ref, snapshots=[*src["snapshots"], ref])
    return ref


def _copy(ctx: Context, vm: str, name: str, op: str, sr: str | None = None, ignore: tuple[str, ...] = ()) -> str:
    db = ctx.db
    with ops.operation(ctx.pool, ctx.task, vm, op):
        with db.lock:
            if sr is not None:
                db.get("SR", sr)
            src = db.get("VM", vm)
            new = _copy_record(ctx, vm, str(name), op)
            try:
                for vbd in src["VBDs"]:
                    vdi = db.get("VBD", vbd)["VDI"]
                    if vdi != NULL_REF and vdi in ignore:
                        continue
                    copy = vdi if vdi == NULL_REF else devices.copy_vdi(db, vdi, sr, snapshot=op == "snapshot")
                    devices.copy_vbd(db, vbd, new, copy)
                for vif in src["VIFs"]:
                    devices.copy_vif(db, vif, new, preserve_mac=op == "snapshot")
            except errors.XapiError:
                _destroy(ctx, new, with_disks=True)
                raise
            lifecycle.update_allowed(db, new)
            return new


@api("VM.clone", "vm", "new_name")
def clone(ctx: Context, vm: str, new_name: str) -> str:
    return _copy(ctx, vm, new_name, "clone")


@api("VM.copy", "vm", "new_name", "sr")
def copy(ctx: Context, vm: str, new_name: str, sr: str) -> str:
    """VM.copy: full copies of the disks, on `sr`, or each on its own SR when sr is NULL."""
    return _copy(ctx, vm, new_name, "copy", None if sr == NULL_REF else str(sr))


@api("VM.snapshot", "vm", "new_name", "ignore_vdis", optional=1)
def snapshot(ctx: Context, vm: str, new_name: str, ignore_vdis: object = ()) -> str:
    if not isinstance(ignore_vdis, (list, tuple)):
        raise errors.field_type_error("ignore_vdis")
    return _copy(ctx, vm, new_name, "snapshot", ignore=tuple(str(v) for v in ignore_vdis))


_DISK = re.compile(r"<disk\b([^>]*)/?>")
_ATTR = re.compile(r'(\w+)="([^"]*)"')


@api("VM.provision", "vm")
def provision(ctx: Context, vm: str) -> None:
    """Creates the disks a template's other_config:disks (the <provision> XML) asks for, on
    the SR named there or the pool's default SR, then drops the key (xapi's Xapi_templates)."""
    db = ctx.db
    with ops.operation(ctx.pool, ctx.task, vm, "provision"), db.lock:
        rec = db.get("VM", vm)
        spec = rec["other_config"].get("disks", "")
        pool = db.get("pool", db.refs("pool")[0])
        for m in _DISK.finditer(spec):
            attrs = dict(_ATTR.findall(m.group(1)))
            sr = attrs.get("sr") or pool["default_SR"]
            if sr and not sr.startswith("OpaqueRef:"):
                sr = db.by_uuid("SR", sr)
            if not sr or sr == NULL_REF:
                raise errors.XapiError("PROVISION_FAILED_OUT_OF_SPACE")
            device = attrs.get("device", "autodetect")
            vdi = devices.create_vdi(
                db,
                {
                    "name_label": f"{rec['name_label']} {device}",
                    "SR": sr,
                    "virtual_size": int(attrs.get("size", "0")),
                    "type": attrs.get("type", "system"),
                    "other_config": {},
                },
            )
            devices.create_vbd(
                db,
                {
                    "VM": vm,
                    "VDI": vdi,
                    "userdevice": device,
                    "bootable": attrs.get("bootable") == "true",
                    "type": "Disk",
                },
            )
        other = {k: v for k, v in rec["other_config"].items() if k != "disks"}
        db.set("VM", vm, other_config=other)


def _destroy(ctx: Context, vm: str, with_disks: bool = False) -> None:
    db = ctx.db
    with db.lock:
        rec = db.get("VM", vm)
        for vbd in list(rec["VBDs"]):
            vdi = db.get("VBD", vbd)["VDI"]
            devices.destroy_vbd(db, vbd)
            if with_disks and vdi != NULL_REF and db.exists("VDI", vdi):
                devices.destroy_vdi(db, vdi)
        for vif in list(rec["VIFs"]):
            devices.destroy_vif(db, vif)
        for cls, ref in (("VM_metrics", rec["metrics"]), ("VM_guest_metrics", rec["guest_metrics"])):
            if db.exists(cls, ref):
                db.destroy(cls, ref)
        for other in (rec["snapshot_of"], *rec["snapshots"], *rec["children"]):
            if other != NULL_REF and db.exists("VM", other):
                o = db.get("VM", other)
                db.set(
                    "VM",
                    other,
                    snapshots=[v for v in o["snapshots"] if v != vm],
                    snapshot_of=NULL_REF if o["snapshot_of"] == vm else o["snapshot_of"],
                    parent=NULL_REF if o["parent"] == vm else o["parent"],
                )
        db.destroy("VM", vm)


@api("VM.destroy", "self")
def destroy(ctx: Context, self: str) -> None:
    """xapi_vm.destroy: the VM and its VBDs, VIFs and metrics; its VDIs stay (clients delete
    the disks they want gone, e.g. after a failed copy)."""
    with ctx.db.lock:
        lifecycle.assert_allowed(ctx.db, self, "destroy")
        _destroy(ctx, self)


@api("VM.get_allowed_VBD_devices", "vm")
def get_allowed_vbd_devices(ctx: Context, vm: str) -> list[str]:
    with ctx.db.lock:
        return devices.allowed_vbd_devices(ctx.db, vm)


@api("VM.get_allowed_VIF_devices", "vm")
def get_allowed_vif_devices(ctx: Context, vm: str) -> list[str]:
    with ctx.db.lock:
        return devices.allowed_vif_devices(ctx.db, vm)
