"""Disks and NICs in the database: VDIs on SRs (with the SR's usage), VBDs and VIFs linked into
their VM, VDI and network, the device numbers a VM has free (xapi_vm_helpers.allowed_VBD_devices
and allowed_VIF_devices), and copies of each as VM.clone/copy/snapshot make them."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from . import errors
from .db import NULL_REF
from .schema import new_record, now

if TYPE_CHECKING:
    from .db import Database


def _sr_usage(db: Database, sr: str) -> None:
    vdis = [db.get("VDI", v) for v in db.get("SR", sr)["VDIs"] if db.exists("VDI", v)]
    db.set(
        "SR",
        sr,
        virtual_allocation=sum(v["virtual_size"] for v in vdis),
        physical_utilisation=sum(v["physical_utilisation"] for v in vdis),
    )


def create_vdi(db: Database, fields: dict[str, Any]) -> str:
    """A VDI on fields["SR"], thick-provisioned; SR_FULL [requested, maximum] if it does not fit."""
    with db.lock:
        sr = fields["SR"]
        srec = db.get("SR", sr)
        size = int(fields.get("virtual_size", 0))
        if srec["content_type"] != "iso" and srec["physical_utilisation"] + size > srec["physical_size"]:
            raise errors.XapiError("SR_FULL", size, srec["physical_size"] - srec["physical_utilisation"])
        rec = new_record("VDI", **{"physical_utilisation": size, **fields, "VBDs": []})
        ref = db.create("VDI", rec)
        db.set("VDI", ref, location=rec["location"] or rec["uuid"])
        db.set("SR", sr, VDIs=[*srec["VDIs"], ref])
        _sr_usage(db, sr)
        return ref


def copy_vdi(db: Database, vdi: str, sr: str | None = None, snapshot: bool = False) -> str:
    with db.lock:
        src = db.get("VDI", vdi)
        keep = ("name_label", "name_description", "virtual_size", "type", "sharable", "read_only")
        fields: dict[str, Any] = {k: src[k] for k in keep}
        fields.update(SR=sr or src["SR"], other_config=dict(src["other_config"]), sm_config=dict(src["sm_config"]))
        if snapshot:
            fields.update(is_a_snapshot=True, snapshot_of=vdi, snapshot_time=now())
        ref = create_vdi(db, fields)
        if snapshot:
            db.set("VDI", vdi, snapshots=[*src["snapshots"], ref])
        return ref


def destroy_vdi(db: Database, vdi: str) -> None:
    with db.lock:
        rec = db.get("VDI", vdi)
        for vbd in rec["VBDs"]:
            if db.exists("VBD", vbd) and db.get("VBD", vbd)["currently_attached"]:
                raise errors.XapiError("VDI_IN_USE", vdi, "destroy")
        for vbd in list(rec["VBDs"]):
            if db.exists("VBD", vbd):
                destroy_vbd(db, vbd)
        if rec["snapshot_of"] != NULL_REF and db.exists("VDI", rec["snapshot_of"]):
            parent = db.get("VDI", rec["snapshot_of"])
            db.set("VDI", rec["snapshot_of"], snapshots=[v for v in parent["snapshots"] if v != vdi])
        sr = rec["SR"]
        db.destroy("VDI", vdi)
        if db.exists("SR", sr):
            db.set("SR", sr, VDIs=[v for v in db.get("SR", sr)["VDIs"] if v != vdi])
            _sr_usage(db, sr)


# -- device numbers ---------------------------------------------------------------------------
def _disk_number(device: str) -> int | None:
    for prefix in ("xvd", "hd", "sd"):
        if device.startswith(prefix) and len(device) == len(prefix) + 1 and device[-1].isalpha():
            return ord(device[-1]) - ord("a")
    return int(device) if device.isdigit() else None


def used_vbd_devices(db: Database, vm: str) -> set[int]:
    used = set()
    for vbd in db.get("VM", vm)["VBDs"]:
        rec = db.get("VBD", vbd)
        for text in (rec["userdevice"], rec["device"]):
            n = _disk_number(str(text))
            if n is not None:
                used.add(n)
    return used


def allowed_vbd_devices(db: Database, vm: str) -> list[str]:
    last = 255 if db.get("VM", vm)["is_control_domain"] else 254
    used = used_vbd_devices(db, vm)
    return [str(n) for n in range(last + 1) if n not in used]


def allowed_vif_devices(db: Database, vm: str) -> list[str]:
    used = {db.get("VIF", v)["device"] for v in db.get("VM", vm)["VIFs"]}
    return [str(n) for n in range(16) if str(n) not in used]


# -- VBDs and VIFs ------------------------------------------------------------------------------
def create_vbd(db: Database, fields: dict[str, Any]) -> str:
    with db.lock:
        vm, vdi = fields["VM"], fields.get("VDI", NULL_REF)
        vm_rec = db.get("VM", vm)
        if vdi != NULL_REF:
            db.get("VDI", vdi)
        userdevice = str(fields.get("userdevice", ""))
        if userdevice == "autodetect":
            free = allowed_vbd_devices(db, vm)
            if not free:
                raise errors.XapiError("INVALID_DEVICE", userdevice)
            userdevice = free[0]
        n = _disk_number(userdevice)
        if n is not None and n in used_vbd_devices(db, vm):
            raise errors.XapiError("DEVICE_ALREADY_EXISTS", userdevice)
        rec = new_record("VBD", **{**fields, "userdevice": userdevice, "currently_attached": False})
        rec["empty"] = vdi == NULL_REF
        ref = db.create("VBD", rec)
        db.set("VM", vm, VBDs=[*vm_rec["VBDs"], ref])
        if vdi != NULL_REF:
            db.set("VDI", vdi, VBDs=[*db.get("VDI", vdi)["VBDs"], ref])
        return ref


def destroy_vbd(db: Database, vbd: str) -> None:
    with db.lock:
        rec = db.get("VBD", vbd)
        if rec["currently_attached"]:
            vm_uuid = db.get("VM", rec["VM"])["uuid"] if db.exists("VM", rec["VM"]) else ""
            raise errors.operation_not_allowed(f"VBD '{rec['uuid']}' still attached to '{vm_uuid}'")
        db.destroy("VBD", vbd)
        if db.exists("VM", rec["VM"]):
            db.set("VM", rec["VM"], VBDs=[v for v in db.get("VM", rec["VM"])["VBDs"] if v != vbd])
        if rec["VDI"] != NULL_REF and db.exists("VDI", rec["VDI"]):
            db.set("VDI", rec["VDI"], VBDs=[v for v in db.get("VDI", rec["VDI"])["VBDs"] if v != vbd])


def random_mac() -> str:
    b = os.urandom(5)
    return "02:" + ":".join(f"{x:02x}" for x in b)  # locally administered, as xapi's random MACs


def create_vif(db: Database, fields: dict[str, Any]) -> str:
    with db.lock:
        vm, network = fields["VM"], fields["network"]
        vm_rec = db.get("VM", vm)
        net = db.get("network", network)
        device = str(fields.get("device", ""))
        if device in {db.get("VIF", v)["device"] for v in vm_rec["VIFs"]}:
            raise errors.XapiError("DEVICE_ALREADY_EXISTS", device)
        mac = str(fields.get("MAC", ""))
        rec = new_record(
            "VIF",
            **{**fields, "MAC": mac or random_mac(), "MAC_autogenerated": not mac, "currently_attached": False},
        )
        ref = db.create("VIF", rec)
        db.set("VM", vm, VIFs=[*vm_rec["VIFs"], ref])
        db.set("network", network, VIFs=[*net["VIFs"], ref])
        return ref


def destroy_vif(db: Database, vif: str) -> None:
    with db.lock:
        rec = db.get("VIF", vif)
        if rec["currently_attached"]:
            raise errors.operation_not_allowed(f"VIF '{rec['uuid']}' is currently attached")
        db.destroy("VIF", vif)
        if db.exists("VM", rec["VM"]):
            db.set("VM", rec["VM"], VIFs=[v for v in db.get("VM", rec["VM"])["VIFs"] if v != vif])
        if db.exists("network", rec["network"]):
            db.set("network", rec["network"], VIFs=[v for v in db.get("network", rec["network"])["VIFs"] if v != vif])


_VBD_COPY = ("device", "userdevice", "bootable", "mode", "type", "unpluggable", "qos_algorithm_type")
_VIF_COPY = ("device", "MTU", "locking_mode", "ipv4_allowed", "ipv6_allowed", "qos_algorithm_type")


def copy_vbd(db: Database, vbd: str, vm: str, vdi: str) -> str:
    src = db.get("VBD", vbd)
    fields = {k: src[k] for k in _VBD_COPY}
    other = dict(src["other_config"])
    if src["type"] == "Disk":
        other.setdefault("owner", "")  # CA-58405: the copy owns its disks
    return create_vbd(db, {**fields, "VM": vm, "VDI": vdi, "other_config": other})


def copy_vif(db: Database, vif: str, vm: str, preserve_mac: bool) -> str:
    src = db.get("VIF", vif)
    fields = {k: src[k] for k in _VIF_COPY}
    mac = src["MAC"] if preserve_mac or not src["MAC_autogenerated"] else ""
    return create_vif(
        db, {**fields, "VM": vm, "network": src["network"], "MAC": mac, "other_config": dict(src["other_config"])}
    )
