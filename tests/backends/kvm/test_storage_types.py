"""How libvirt storage pools show as SRs: an iSCSI LUN both hosts reach is one shared "iscsi" SR,
whether the hosts' kernels log in (pool type iscsi) or libvirt and QEMU do (iscsi-direct)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from poolctl.backends.kvm.merge import _storage
from poolctl.backends.kvm.xmlinfo import parse_pool


def _iscsi_pool(kind: str, initiator: str) -> str:
    init = f"<initiator><iqn name='{initiator}'/></initiator>" if kind == "iscsi-direct" else ""
    target = "" if kind == "iscsi-direct" else "<target><path>/dev/disk/by-path</path></target>"
    return (
        f"<pool type='{kind}'><name>san</name><capacity unit='bytes'>33554432</capacity>"
        "<source><host name='10.99.0.10' port='3260'/><device path='iqn.2026-12.lab.poolctl:shared'/>"
        f"{init}</source>{target}</pool>"
    )


def _host(name: str, xml: str) -> SimpleNamespace:
    uri = f"qemu+ssh://{name}/system"
    return SimpleNamespace(uri=uri, ref=f"host:{uri}", pools={"san": parse_pool(xml, True)})


@pytest.mark.parametrize("kind", ["iscsi", "iscsi-direct"])
def test_lun_seen_by_both_hosts_is_one_shared_iscsi_sr(kind):
    # each host logs in with its own initiator name: still the same LUN
    hosts = [_host("kvm1", _iscsi_pool(kind, "iqn.x:kvm1")), _host("kvm2", _iscsi_pool(kind, "iqn.x:kvm2"))]
    srs, sr_of_pool = _storage((), hosts)
    [sr] = srs
    assert (sr.ref, sr.type, sr.shared, sr.size) == ("sr:san", "iscsi", True, 33554432)
    assert sr.hosts == tuple(h.ref for h in hosts)
    assert {sr_of_pool[(h.uri, "san")] for h in hosts} == {"sr:san"}


def test_lun_seen_by_one_host_is_not_shared():
    [sr], _ = _storage((), [_host("kvm1", _iscsi_pool("iscsi-direct", "iqn.x:kvm1"))])
    assert (sr.type, sr.shared) == ("iscsi", False)
