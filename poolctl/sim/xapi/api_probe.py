"""Storage discovery and volume calls the SM drivers answer (xapi_sr.ml, xapi_vdi.ml, sm/ drivers):
SR.probe as SMAPIv1 drivers answer it, step by step, for the storage the simulated pool has (the
lab's iSCSI target with its one LUN, each host's local disk), VDI.introduce, VDI.revert and
VDI.data_destroy.

A driver's failure reaches the client as sm_exec.ml builds it: SR_BACKEND_FAILURE_<code>
["", <XE_SR_ERRORCODES description>, <what the driver printed on stderr>]; the iSCSI probe
steps print the targets (then the LUNs) found as XML there, which is how XenCenter's wizard
learns them."""

from __future__ import annotations

import xml.dom.minidom

from . import datamodel, errors
from .build import ISCSI_DEVICE_CONFIG
from .registry import Context, api

# sm/libs/sm/core/XE_SR_ERRORCODES.xml: (code, description)
SM_ERRORS = {
    "Unimplemented": (38, "The requested method is not supported/implemented"),
    "ConfigTargetMissing": (95, "The request is missing the target parameter"),
    "ConfigTargetIQNMissing": (96, "The request is missing or has an incorrect target IQN parameter"),
    "ConfigServerMissing": (102, "The request is missing the server parameter"),
    "ConfigSCSIid": (107, "The SCSIid parameter is missing or incorrect"),
    "NFSTarget": (108, "Unable to detect an NFS service on this target."),
    "ISCSITarget": (141, "Unable to connect to ISCSI service on target"),
    "ISCSILogin": (
        68,
        "ISCSI login failed - check access settings for the initiator on the storage, if CHAP is used "
        "verify CHAP credentials",
    ),
    "ConfigDeviceMissing": (90, "The request is missing the device parameter"),
    "InvalidDev": (19, "No such device"),
}
_SMAPIV1 = ("lvm", "ext", "nfs", "lvmoiscsi", "lvmohba", "iso", "smb", "cifs", "file", "udev", "dummy")
TGT_VENDOR = "IET"  # what tgt reports as the LUN's vendor


def sm_error(name: str, stderr: str = "") -> errors.XapiError:
    code, description = SM_ERRORS[name]
    return errors.XapiError(f"SR_BACKEND_FAILURE_{code}", "", description, stderr)


def _pretty(root: str, rows: list[list[tuple[str, str]]], row_tag: str) -> str:
    """minidom's toprettyxml, as the SM drivers print their discoveries."""
    dom = xml.dom.minidom.Document()
    top = dom.createElement(root)
    dom.appendChild(top)
    for row in rows:
        entry = dom.createElement(row_tag)
        top.appendChild(entry)
        for tag, text in row:
            sub = dom.createElement(tag)
            sub.appendChild(dom.createTextNode(text))
            entry.appendChild(sub)
    return dom.toprettyxml()


def _srs_on(ctx: Context, match: dict[str, str], sr_type: str) -> list[str]:
    """SRs whose PBDs' device_config has every key of `match` (the volume group on that LUN)."""
    db = ctx.db
    out = []
    for sr, rec in db.tables["SR"].items():
        if rec["type"] != sr_type:
            continue
        for pbd in rec["PBDs"]:
            config = db.get("PBD", pbd)["device_config"]
            if all(config.get(k) == v for k, v in match.items()):
                out.append(sr)
                break
    return out


def _srlist(ctx: Context, srs: list[str], devlist: str) -> str:
    rows = [
        [
            ("UUID", ctx.db.get("SR", sr)["uuid"]),
            ("Devlist", devlist),
            ("size", str(ctx.db.get("SR", sr)["physical_size"])),
        ]
        for sr in srs
    ]
    return _pretty("SRlist", rows, "SR")


def _probe_iscsi(ctx: Context, host: str, config: dict[str, str]) -> str:
    target = config.get("target", "")
    if not target:
        raise sm_error("ConfigTargetMissing")
    if not ctx.db.get("host", host)["other_config"].get("iscsi_iqn"):
        raise errors.XapiError("SR_BACKEND_FAILURE_71", "", "Failed to start ISCSI daemon", "")
    port = config.get("port") or "3260"
    lab = ISCSI_DEVICE_CONFIG
    if target.split(",")[0] != lab["target"] or port != lab["port"]:  # util._testHost: nothing listens
        raise sm_error("ISCSITarget")
    if not config.get("targetIQN"):
        entries = [[("Index", "0"), ("IPAddress", target), ("TargetIQN", lab["targetIQN"])]]
        entries.append([("Index", "1"), ("IPAddress", target), ("TargetIQN", "*")])
        raise sm_error("ConfigTargetIQNMissing", _pretty("iscsi-target-iqns", entries, "TGT"))
    if config["targetIQN"] not in (lab["targetIQN"], "*"):
        raise sm_error("ISCSILogin")
    srs = _srs_on(ctx, {"SCSIid": lab["SCSIid"]}, "lvmoiscsi")
    size = str(ctx.db.get("SR", srs[0])["physical_size"]) if srs else str(2048 * 1024**3)
    if not config.get("SCSIid"):
        lun = [("vendor", TGT_VENDOR), ("serial", "beaf11"), ("LUNid", "1"), ("size", size), ("SCSIid", lab["SCSIid"])]
        raise sm_error("ConfigSCSIid", _pretty("iscsi-target", [lun], "LUN"))
    if config["SCSIid"] != lab["SCSIid"]:
        raise sm_error("ConfigSCSIid")
    return _srlist(ctx, srs, f"/dev/disk/by-id/scsi-{lab['SCSIid']}")


def _probe_local(ctx: Context, host: str, config: dict[str, str], sr_type: str) -> str:
    device = config.get("device", "")
    if not device:
        raise sm_error("ConfigDeviceMissing")
    mine = {p for p in ctx.db.get("host", host)["PBDs"]}
    srs = [sr for sr in _srs_on(ctx, {"device": device}, sr_type) if mine & set(ctx.db.get("SR", sr)["PBDs"])]
    if not srs and device not in {ctx.db.get("PBD", p)["device_config"].get("device") for p in mine}:
        raise sm_error("InvalidDev")
    return _srlist(ctx, srs, device)


@api("SR.probe", "host", "device_config", "type", "sm_config")
def probe(ctx: Context, host: str, device_config: object, type: str, sm_config: object) -> str:
    config = datamodel.coerce("(string -> string) map", device_config, "SR", "device_config")
    datamodel.coerce("(string -> string) map", sm_config, "SR", "sm_config")
    sr_type = str(type).lower()
    with ctx.db.lock:
        ctx.db.get("host", host)
        if sr_type not in _SMAPIV1:
            raise errors.XapiError("SR_UNKNOWN_DRIVER", sr_type)
        if sr_type == "lvmoiscsi":
            return _probe_iscsi(ctx, host, config)
        if sr_type in ("lvm", "ext"):
            return _probe_local(ctx, host, config, sr_type)
        if sr_type == "nfs":
            if not config.get("server"):
                raise sm_error("ConfigServerMissing")
            raise sm_error("NFSTarget")  # the simulated network has no NFS server
        raise sm_error("Unimplemented")  # ISOSR, udevSR, ... have no probe


@api("SR.probe_ext", "host", "device_config", "type", "sm_config")
def probe_ext(ctx: Context, host: str, device_config: object, type: str, sm_config: object) -> list[object]:
    """SMAPIv1 drivers answer probe with raw XML, which probe_ext cannot carry."""
    datamodel.coerce("(string -> string) map", device_config, "SR", "device_config")
    ctx.db.get("host", host)
    if str(type).lower() not in _SMAPIV1:
        raise errors.XapiError("SR_UNKNOWN_DRIVER", type)
    raise errors.XapiError("SR_OPERATION_NOT_SUPPORTED")


def _assert_pbd_plugged(ctx: Context, sr: str) -> None:
    """Sm.assert_pbd_is_plugged: the master's PBD for the SR must be attached."""
    db = ctx.db
    mine = [p for p in db.get("SR", sr)["PBDs"] if db.get("PBD", p)["host"] == ctx.pool.master]
    pbds = mine or list(db.get("SR", sr)["PBDs"])
    if not pbds or not db.get("PBD", pbds[0])["currently_attached"]:
        raise errors.XapiError("SR_NO_PBDS", sr)


@api(
    "VDI.introduce",
    "uuid",
    "name_label",
    "name_description",
    "SR",
    "type",
    "sharable",
    "read_only",
    "other_config",
    "location",
    "xenstore_data",
    "sm_config",
    "managed",
    "virtual_size",
    "physical_utilisation",
    "metadata_of_pool",
    "is_a_snapshot",
    "snapshot_time",
    "snapshot_of",
)
def vdi_introduce(ctx: Context, *args: object) -> str:
    """The SMAPIv1 drivers of the simulated SRs implement no vdi_introduce (only udev, HBA, raw
    iSCSI and dummy SRs do): after xapi's own checks the driver answers Unimplemented."""
    message = datamodel.messages("VDI")["introduce"]
    values = {name: datamodel.coerce(ty, v, "VDI", name) for (ty, name), v in zip(message.params, args, strict=True)}
    db = ctx.db
    with db.lock:
        sr = values["SR"]
        db.get("SR", sr)
        _assert_pbd_plugged(ctx, sr)
        for vdi in db.get("SR", sr)["VDIs"]:
            rec = db.get("VDI", vdi)
            if rec["location"] == values["location"] and rec["uuid"] != values["uuid"]:
                raise errors.XapiError("LOCATION_NOT_UNIQUE", sr, values["location"])
        raise sm_error("Unimplemented")


def _assert_managed(ctx: Context, vdi: str) -> None:
    if not ctx.db.get("VDI", vdi)["managed"]:
        raise errors.XapiError("VDI_NOT_MANAGED", vdi)


@api("VDI.revert", "snapshot")
def vdi_revert(ctx: Context, snapshot: str) -> None:
    """SMAPIv1 has no VDI.revert: xapi answers UNIMPLEMENTED_IN_SM_BACKEND [sr] (VM.revert copies
    the snapshot's disks instead)."""
    with ctx.db.lock:
        sr = ctx.db.get("VDI", snapshot)["SR"]
        _assert_pbd_plugged(ctx, sr)
        _assert_managed(ctx, snapshot)
        raise errors.XapiError("UNIMPLEMENTED_IN_SM_BACKEND", sr)


@api("VDI.data_destroy", "self")
def vdi_data_destroy(ctx: Context, self: str) -> None:
    """A snapshot with changed-block tracking keeps its CBT log and loses its data: type
    cbt_metadata, nothing allocated on the SR any more."""
    from .devices import _sr_usage

    db = ctx.db
    with db.lock:
        rec = db.get("VDI", self)
        if rec["type"] == "cbt_metadata":
            return  # xapi_vdi._data_destroy: already done
        if not rec["is_a_snapshot"]:
            raise errors.XapiError("OPERATION_NOT_ALLOWED", f"VDI is not a snapshot: {self}")
        if not rec["cbt_enabled"]:
            raise errors.XapiError("VDI_NO_CBT_METADATA", self)
        _assert_pbd_plugged(ctx, rec["SR"])
        _assert_managed(ctx, self)
        busy = [v for v in rec["VBDs"] if db.exists("VBD", v) and db.get("VBD", v)["currently_attached"]]
        if busy:
            raise errors.XapiError("VDI_IN_USE", self, "data_destroy")
        db.set("VDI", self, type="cbt_metadata", physical_utilisation=0)
        _sr_usage(db, rec["SR"])
