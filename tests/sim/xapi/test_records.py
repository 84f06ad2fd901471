"""Reading every class through the SDK: get_all_records, get_record, getters, lookups, errors."""

from __future__ import annotations

import xmlrpc.client

import pytest
import XenAPI

from .conftest import host_named, vm_named

CLASSES = [
    "pool",
    "host",
    "host_metrics",
    "SR",
    "PBD",
    "VDI",
    "VBD",
    "VM",
    "VM_metrics",
    "VM_guest_metrics",
    "VIF",
    "network",
    "PIF",
    "task",
]


@pytest.mark.parametrize("cls", CLASSES)
def test_every_class_reads_consistently(api, cls):
    proxy = getattr(api, cls)
    records = proxy.get_all_records()
    assert sorted(records) == sorted(proxy.get_all())
    for ref, rec in list(records.items())[:3]:
        assert ref.startswith("OpaqueRef:")
        assert proxy.get_record(ref) == rec
        assert proxy.get_by_uuid(rec["uuid"]) == ref
        assert proxy.get_uuid(ref) == rec["uuid"]


def test_lab_inventory(api):
    vms = api.VM.get_all_records()
    guests = {r["name_label"]: r for r in vms.values() if not r["is_control_domain"] and not r["is_a_template"]}
    dom0s = [r for r in vms.values() if r["is_control_domain"]]
    assert len(guests) == 12 and len(dom0s) == 3
    assert guests["test-01"]["power_state"] == "Halted"
    assert {d["resident_on"] for d in dom0s} == set(api.host.get_all())
    srs = {r["name_label"]: r for r in api.SR.get_all_records().values()}
    assert srs["iSCSI storage"]["type"] == "lvmoiscsi" and srs["iSCSI storage"]["shared"] is True
    assert len(srs["iSCSI storage"]["PBDs"]) == 3
    assert srs["Local storage xcp-lab-1"]["shared"] is False and len(srs["Local storage xcp-lab-1"]["PBDs"]) == 1
    assert srs["ISO library"]["content_type"] == "iso"


def test_wire_types_are_xapis(api, server):
    host = host_named(api, "xcp-lab-1")
    rec = api.host.get_record(host)
    assert rec["API_version_major"] == "2"  # XAPI ints travel as strings over XML-RPC
    assert rec["software_version"]["product_brand"] == "XCP-ng"
    assert int(rec["cpu_info"]["cpu_count"]) == 16
    assert rec["enabled"] is True
    metrics = api.host_metrics.get_record(rec["metrics"])
    assert int(metrics["memory_total"]) == 64 * 1024**3 and int(metrics["memory_free"]) > 0
    assert isinstance(metrics["last_updated"], xmlrpc.client.DateTime)
    assert len(metrics["last_updated"].value) == len("20261125T12:00:00Z")
    vm = api.VM.get_record(vm_named(api, "web-01"))
    assert vm["power_state"] == "Running" and vm["resident_on"] == host
    assert vm["memory_static_max"] == str(2 * 1024**3)
    assert api.VM.get_VCPUs_max(vm_named(api, "web-01")) == "2"
    gm = api.VM_guest_metrics.get_record(vm["guest_metrics"])
    assert gm["networks"]["0/ip"] == "127.0.10.11"
    vbds = [api.VBD.get_record(v) for v in vm["VBDs"]]
    assert {v["type"] for v in vbds} == {"Disk", "CD"}
    assert any(v["empty"] for v in vbds if v["type"] == "CD")
    vif = api.VIF.get_record(vm["VIFs"][0])
    assert api.network.get_name_label(vif["network"]) == "VM network"
    assert api.VM_metrics.get_VCPUs_utilisation(vm["metrics"])["0"] == pytest.approx(0.02)


def test_get_by_uuid_with_bad_uuid(api):
    with pytest.raises(XenAPI.Failure) as exc:
        api.VM.get_by_uuid("00000000-0000-0000-0000-000000000000")
    assert exc.value.details == ["UUID_INVALID", "VM", "00000000-0000-0000-0000-000000000000"]


def test_uuid_of_another_class_is_invalid(api):
    host_uuid = api.host.get_uuid(host_named(api, "xcp-lab-1"))
    with pytest.raises(XenAPI.Failure) as exc:
        api.VM.get_by_uuid(host_uuid)
    assert exc.value.details == ["UUID_INVALID", "VM", host_uuid]


def test_bad_ref_is_handle_invalid(api):
    with pytest.raises(XenAPI.Failure) as exc:
        api.VM.get_record("OpaqueRef:nope")
    assert exc.value.details == ["HANDLE_INVALID", "VM", "OpaqueRef:nope"]
    host = host_named(api, "xcp-lab-1")
    with pytest.raises(XenAPI.Failure) as exc:
        api.VM.get_power_state(host)  # a ref of another class
    assert exc.value.details == ["HANDLE_INVALID", "VM", host]


def test_unknown_method(api):
    with pytest.raises(XenAPI.Failure) as exc:
        api.VM.frobnicate("OpaqueRef:NULL")
    assert exc.value.details == ["MESSAGE_METHOD_UNKNOWN", "VM.frobnicate"]
    with pytest.raises(XenAPI.Failure) as exc:
        api.VM.get_no_such_field("OpaqueRef:NULL")
    assert exc.value.details == ["MESSAGE_METHOD_UNKNOWN", "VM.get_no_such_field"]


def test_wrong_parameter_count(api):
    with pytest.raises(XenAPI.Failure) as exc:
        api.VM.get_record()
    # gen_server.ml counts neither expected nor received parameters with the session
    assert exc.value.details == ["MESSAGE_PARAMETER_COUNT_MISMATCH", "VM.get_record", "1", "0"]


def test_underscore_spelling_and_set_name(api):
    vm = vm_named(api, "web-02")
    assert api.VM_get_name_label(vm) == "web-02"
    assert api.VM_metrics_get_all() == api.VM_metrics.get_all()
    api.VM.set_name_label(vm, "web-02-renamed")
    assert api.VM.get_name_label(vm) == "web-02-renamed"
    api.VM.add_to_other_config(vm, "owner", "ops")
    assert api.VM.get_other_config(vm)["owner"] == "ops"
    with pytest.raises(XenAPI.Failure) as exc:
        api.VM.add_to_other_config(vm, "owner", "dev")
    assert exc.value.details[0] == "MAP_DUPLICATE_KEY"
    api.VM.remove_from_other_config(vm, "owner")
    assert "owner" not in api.VM.get_other_config(vm)


def test_get_all_records_where(api):
    where = api.VM.get_all_records_where(
        'field "is_a_template"="false" and field "is_control_domain"="false" and not (field "power_state"="Halted")'
    )
    names = {r["name_label"] for r in where.values()}
    assert len(names) == 10 and "test-01" not in names and "web-01" in names
    assert len(api.VM.get_all_records_where('field "name_label"="db-01" or field "name_label"="db-02"')) == 2
    assert api.host.get_all_records_where("true").keys() == api.host.get_all_records().keys()
    with pytest.raises(XenAPI.Failure) as exc:
        api.VM.get_all_records_where('field "name_label"=')
    assert exc.value.details[0] == "INVALID_VALUE"
