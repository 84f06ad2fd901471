"""SR.probe step by step as the SM drivers answer it, and the VDI calls SMAPIv1 answers."""

from __future__ import annotations

import xml.dom.minidom

import pytest
import XenAPI

from .conftest import vm_named


def failure(call, *args) -> list[str]:
    with pytest.raises(XenAPI.Failure) as exc:
        call(*args)
    return exc.value.details


def _texts(xml_text: str, tag: str) -> list[str]:
    return [e.firstChild.data for e in xml.dom.minidom.parseString(xml_text).getElementsByTagName(tag)]


def test_iscsi_probe_walks_target_iqn_lun_sr(api):
    host = api.host.get_all()[0]
    shared = api.SR.get_by_name_label("iSCSI storage")[0]
    assert failure(api.SR.probe, host, {}, "lvmoiscsi", {})[:3] == [
        "SR_BACKEND_FAILURE_95",
        "",
        "The request is missing the target parameter",
    ]
    assert failure(api.SR.probe, host, {"target": "10.9.9.9"}, "lvmoiscsi", {})[0] == "SR_BACKEND_FAILURE_141"
    err = failure(api.SR.probe, host, {"target": "iscsi.lab.local"}, "lvmoiscsi", {})
    assert err[:3] == ["SR_BACKEND_FAILURE_96", "", "The request is missing or has an incorrect target IQN parameter"]
    iqn = api.PBD.get_device_config(api.SR.get_PBDs(shared)[0])["targetIQN"]
    assert _texts(err[3], "TargetIQN") == [iqn, "*"]
    err = failure(api.SR.probe, host, {"target": "iscsi.lab.local", "targetIQN": iqn}, "lvmoiscsi", {})
    assert err[0] == "SR_BACKEND_FAILURE_107"
    scsi_id = api.PBD.get_device_config(api.SR.get_PBDs(shared)[0])["SCSIid"]
    assert _texts(err[3], "SCSIid") == [scsi_id] and _texts(err[3], "size") == [api.SR.get_physical_size(shared)]
    assert (
        failure(api.SR.probe, host, {"target": "iscsi.lab.local", "targetIQN": "iqn.x:y"}, "lvmoiscsi", {})[0]
        == "SR_BACKEND_FAILURE_68"
    )
    found = api.SR.probe(host, {"target": "iscsi.lab.local", "targetIQN": iqn, "SCSIid": scsi_id}, "lvmoiscsi", {})
    assert _texts(found, "UUID") == [api.SR.get_uuid(shared)]
    assert _texts(found, "Devlist") == [f"/dev/disk/by-id/scsi-{scsi_id}"]


def test_probe_local_nfs_unknown_and_ext(api):
    host = api.host.get_by_name_label("xcp-lab-1")[0]
    local = api.SR.get_by_name_label("Local storage xcp-lab-1")[0]
    found = api.SR.probe(host, {"device": "/dev/sda3"}, "ext", {})
    assert _texts(found, "UUID") == [api.SR.get_uuid(local)]
    assert failure(api.SR.probe, host, {"device": "/dev/nope"}, "ext", {})[0] == "SR_BACKEND_FAILURE_19"
    assert failure(api.SR.probe, host, {}, "nfs", {})[0] == "SR_BACKEND_FAILURE_102"
    assert failure(api.SR.probe, host, {"server": "nas"}, "nfs", {})[0] == "SR_BACKEND_FAILURE_108"
    assert failure(api.SR.probe, host, {}, "nosuchsr", {}) == ["SR_UNKNOWN_DRIVER", "nosuchsr"]
    assert failure(api.SR.probe_ext, host, {}, "lvmoiscsi", {}) == ["SR_OPERATION_NOT_SUPPORTED"]
    assert failure(api.SR.make, host, {}, "0", "", "", "lvm", "", {}) == ["MESSAGE_DEPRECATED"]


def test_vdi_introduce_revert_and_data_destroy(api):
    vm = vm_named(api, "web-01")
    vdi = next(api.VBD.get_VDI(b) for b in api.VM.get_VBDs(vm) if api.VBD.get_type(b) == "Disk")
    sr = api.VDI.get_SR(vdi)
    loc = api.VDI.get_location(vdi)
    args = [
        "",
        "",
        sr,
        "user",
        False,
        False,
        {},
        loc,
        {},
        {},
        True,
        "0",
        "0",
        "OpaqueRef:NULL",
        False,
        "20260101T00:00:00Z",
        "OpaqueRef:NULL",
    ]
    uuid = "0d7a5a3b-1111-4222-8333-444455556666"
    assert failure(api.VDI.introduce, uuid, *args) == ["LOCATION_NOT_UNIQUE", sr, loc]
    args[7] = "elsewhere"
    assert failure(api.VDI.introduce, uuid, *args)[:3] == [
        "SR_BACKEND_FAILURE_38",
        "",
        "The requested method is not supported/implemented",
    ]
    snap = api.VDI.snapshot(vdi, {})
    assert failure(api.VDI.revert, snap) == ["UNIMPLEMENTED_IN_SM_BACKEND", sr]
    assert failure(api.VDI.data_destroy, vdi) == ["OPERATION_NOT_ALLOWED", f"VDI is not a snapshot: {vdi}"]
    assert failure(api.VDI.data_destroy, snap) == ["VDI_NO_CBT_METADATA", snap]
    api.VDI.enable_cbt(vdi)
    cbt_snap = api.VDI.snapshot(vdi, {})
    api.VDI.enable_cbt(cbt_snap)
    used = int(api.SR.get_physical_utilisation(sr))
    size = int(api.VDI.get_physical_utilisation(cbt_snap))
    api.VDI.data_destroy(cbt_snap)
    rec = api.VDI.get_record(cbt_snap)
    assert rec["type"] == "cbt_metadata" and rec["physical_utilisation"] == "0"
    assert int(api.SR.get_physical_utilisation(sr)) == used - size
