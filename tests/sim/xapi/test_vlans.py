"""VLANs and NIC introduction through the XenAPI SDK: records linked as xapi links them, errors."""

from __future__ import annotations

import pytest
import XenAPI


def failure(call, *args) -> list[str]:
    with pytest.raises(XenAPI.Failure) as exc:
        call(*args)
    return exc.value.details


def _network(api, label: str) -> str:
    return api.network.get_by_name_label(label)[0]


def test_pool_vlan_on_every_host_then_destroyed(api):
    net = api.network.create({"name_label": "VLAN 42", "name_description": "", "MTU": "1500", "other_config": {}})
    token = api.event_from(["vlan", "pif"], "", 0.0)["token"]
    pifs = api.pool.create_VLAN("eth1", net, "42")
    hosts = api.host.get_all()
    assert len(pifs) == len(hosts)
    for pif in pifs:
        rec = api.PIF.get_record(pif)
        assert rec["VLAN"] == "42" and not rec["physical"] and rec["MAC"] == "fe:ff:ff:ff:ff:ff"
        assert rec["currently_attached"] and rec["network"] == net and pif in api.host.get_PIFs(rec["host"])
        vlan = api.VLAN.get_record(rec["VLAN_master_of"])
        assert vlan["untagged_PIF"] == pif and vlan["tag"] == "42"
        tagged = api.PIF.get_record(vlan["tagged_PIF"])
        assert tagged["device"] == "eth1" and tagged["physical"] and rec["VLAN_master_of"] in tagged["VLAN_slave_of"]
    assert sorted(api.network.get_PIFs(net)) == sorted(pifs)
    events = api.event_from(["vlan", "pif"], token, 1.0)["events"]
    assert {e["class"] for e in events} == {"vlan", "pif"} and any(e["operation"] == "add" for e in events)
    tagged = api.VLAN.get_tagged_PIF(api.PIF.get_VLAN_master_of(pifs[0]))
    assert failure(api.VLAN.create, tagged, "42", net)[0] == "NETWORK_ALREADY_CONNECTED"
    other = api.network.create({"name_label": "other", "name_description": "", "MTU": "1500", "other_config": {}})
    assert failure(api.VLAN.create, tagged, "42", other) == ["PIF_VLAN_EXISTS", "eth1"]
    assert failure(api.VLAN.create, tagged, "4095", other) == ["VLAN_TAG_INVALID", "4095"]
    assert failure(api.VLAN.create, pifs[0], "7", other) == ["PIF_IS_VLAN", pifs[0]]
    assert failure(api.PIF.forget, tagged) == ["PIF_VLAN_STILL_EXISTS", tagged]
    assert failure(api.PIF.destroy, tagged) == ["PIF_IS_PHYSICAL"]
    for pif in pifs:
        vlan = api.PIF.get_VLAN_master_of(pif)
        api.PIF.destroy(pif)
        assert failure(api.VLAN.get_record, vlan)[0] == "HANDLE_INVALID"
    assert api.network.get_PIFs(net) == [] and api.VLAN.get_all() == []
    assert api.PIF.get_VLAN_slave_of(tagged) == []
    assert failure(api.pool.create_VLAN, "eth9", net, "5") == ["INVALID_VALUE", "device", "eth9"]


def test_forget_introduce_and_scan_a_nic(api):
    host = api.host.get_all()[1]
    pif = next(p for p in api.host.get_PIFs(host) if api.PIF.get_device(p) == "eth1")
    mac, net = api.PIF.get_MAC(pif), api.PIF.get_network(pif)
    mgmt = next(p for p in api.host.get_PIFs(host) if api.PIF.get_management(p))
    assert failure(api.PIF.forget, mgmt) == ["PIF_IS_MANAGEMENT_INTERFACE", mgmt]
    api.PIF.forget(pif)
    assert failure(api.PIF.get_record, pif)[0] == "HANDLE_INVALID" and pif not in api.network.get_PIFs(net)
    assert failure(api.PIF.introduce, host, "00:11:22:33:44:55", "eth1", True)[0] == (
        "COULD_NOT_FIND_NETWORK_INTERFACE_WITH_SPECIFIED_DEVICE_NAME_AND_MAC_ADDRESS"
    )
    assert failure(api.PIF.introduce, host, "zz", "eth1", True) == ["MAC_INVALID", "zz"]
    new = api.PIF.introduce(host, mac.upper(), "eth1", True)
    rec = api.PIF.get_record(new)
    assert rec["device"] == "eth1" and rec["MAC"] == mac and rec["network"] == net and rec["physical"]
    assert failure(api.PIF.introduce, host, mac, "eth1", True) == ["DUPLICATE_PIF_DEVICE_NAME", "eth1"]
    api.PIF.forget(new)
    api.PIF.scan(host)
    back = [p for p in api.host.get_PIFs(host) if api.PIF.get_device(p) == "eth1"]
    assert len(back) == 1 and api.PIF.get_MAC(back[0]) == mac


def test_db_introduce_and_forget(api):
    host = api.host.get_all()[0]
    net = _network(api, "VM network")
    other = api.network.create({"name_label": "db", "name_description": "", "MTU": "9000", "other_config": {}})
    pif = api.PIF.db_introduce(
        "eth7",
        other,
        host,
        "aa:bb:cc:dd:ee:ff",
        "9000",
        "-1",
        True,
        "None",
        "",
        "",
        "",
        "",
        "OpaqueRef:NULL",
        "OpaqueRef:NULL",
        False,
        {},
        False,
        "None",
        [],
        "",
        "IPv4",
        True,
        {},
    )
    rec = api.PIF.get_record(pif)
    assert rec["device"] == "eth7" and rec["MTU"] == "9000" and not rec["currently_attached"]
    assert pif in api.network.get_PIFs(other) and net != other
    api.PIF.db_forget(pif)
    assert pif not in api.host.get_PIFs(host)
