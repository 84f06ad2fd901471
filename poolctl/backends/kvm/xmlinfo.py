"""libvirt XML (domains, storage pools, networks, capabilities) into plain records."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from poolctl.model import VM

_UNIT = {
    "b": 1,
    "bytes": 1,
    "k": 1024,
    "kib": 1024,
    "kb": 1000,
    "m": 1024**2,
    "mib": 1024**2,
    "mb": 1000**2,
    "g": 1024**3,
    "gib": 1024**3,
    "gb": 1000**3,
    "t": 1024**4,
    "tib": 1024**4,
    "tb": 1000**4,
}


def _size(el: ET.Element | None, default_unit: str) -> int:
    text = (el.text or "").strip() if el is not None else ""
    if el is None or not text:
        return 0
    unit = (el.get("unit") or default_unit).lower()
    return int(float(text) * _UNIT.get(unit, 1))


@dataclass(frozen=True, slots=True)
class DiskInfo:
    device: str  # target dev: vda, sda, hdc
    cdrom: bool
    path: str = ""  # file or block device path
    pool: str = ""  # <source pool=...> for type='volume'
    volume: str = ""
    network: str = ""  # protocol:name for network disks (rbd, gluster, iscsi)

    @property
    def label(self) -> str:
        return self.path or self.volume or self.network or self.device


@dataclass(frozen=True, slots=True)
class NicInfo:
    mac: str
    kind: str  # network, bridge, direct, user, ...
    source: str = ""  # network name or bridge name
    target: str = ""  # host-side device (vnet0)


@dataclass(frozen=True, slots=True)
class DomainInfo:
    uuid: str
    name: str
    memory: int  # bytes (currentMemory)
    vcpus: int
    description: str = ""
    disks: tuple[DiskInfo, ...] = ()
    nics: tuple[NicInfo, ...] = ()
    cpu_xml: str = ""  # the <cpu> element when it names a model (compare on a destination)
    arch: str = ""
    machine: str = ""
    virt_type: str = ""
    emulator: str = ""


def _common(text: str) -> str:
    """One string object for values that many domains share (bus names, network names, the
    architecture): a host of thousands of domains keeps each once, not once per domain."""
    return sys.intern(text) if len(text) < 64 else text


def parse_domain(xml: str, known: tuple[str, str] = ("", "")) -> DomainInfo:
    """``known``: the UUID and name the caller already holds: kept as they are when the
    definition says the same, so that a domain holds one copy of each (not one per read)."""
    root = ET.fromstring(xml)
    disks = []
    nics = []
    devices = root.find("devices")
    for d in devices.findall("disk") if devices is not None else ():
        target = d.find("target")
        src = d.find("source")
        dev = target.get("dev", "") if target is not None else ""
        path = pool = volume = network = ""
        if src is not None:
            path = src.get("file") or src.get("dev") or ""
            if d.get("type") == "volume":
                pool, volume = src.get("pool", ""), src.get("volume", "")
            if d.get("type") == "network":
                network = f"{src.get('protocol', '')}:{src.get('name', '')}"
        disks.append(
            DiskInfo(_common(dev), d.get("device") in ("cdrom", "floppy"), path, _common(pool), volume, network)
        )
    for n in devices.findall("interface") if devices is not None else ():
        mac = n.find("mac")
        src = n.find("source")
        tgt = n.find("target")
        kind = _common(n.get("type", ""))
        source = ""
        if src is not None:
            source = _common(src.get("network") or src.get("bridge") or src.get("dev") or "")
        nics.append(
            NicInfo(
                mac.get("address", "") if mac is not None else "",
                kind,
                source,
                tgt.get("dev", "") if tgt is not None else "",
            )
        )
    cpu = root.find("cpu")
    cpu_xml = ""
    if cpu is not None and cpu.get("mode", "custom") == "custom" and cpu.find("model") is not None:
        cpu_xml = ET.tostring(cpu, encoding="unicode")
    os_type = root.find("os/type")
    vcpu = root.find("vcpu")
    vcpus = 0
    if vcpu is not None:
        vcpus = int(vcpu.get("current") or (vcpu.text or "0").strip() or 0)
    memory = _size(root.find("memory"), "KiB")
    current = _size(root.find("currentMemory"), "KiB") or memory
    desc = (root.findtext("title") or root.findtext("description") or "").strip()
    uuid = (root.findtext("uuid") or "").strip()
    name = (root.findtext("name") or "").strip()
    return DomainInfo(
        uuid=known[0] if uuid == known[0] else uuid,
        name=known[1] if name == known[1] else name,
        memory=current,
        vcpus=vcpus,
        description=desc,
        disks=tuple(disks),
        nics=tuple(nics),
        cpu_xml=cpu_xml,
        arch=_common(os_type.get("arch", "")) if os_type is not None else "",
        machine=_common(os_type.get("machine", "")) if os_type is not None else "",
        virt_type=_common(root.get("type", "")),
        emulator=_common((root.findtext("devices/emulator") or "").strip()),
    )


@dataclass(frozen=True)
class PoolInfo:
    name: str
    type: str  # dir, fs, netfs, logical, iscsi, rbd, gluster, ...
    active: bool
    capacity: int = 0
    allocation: int = 0
    target: str = ""  # target path
    source: tuple[str, ...] = ()  # what identifies the backing storage (hosts, dir, device, name)


def parse_pool(xml: str, active: bool) -> PoolInfo:
    root = ET.fromstring(xml)
    src = root.find("source")
    key: list[str] = []
    if src is not None:
        for h in src.findall("host"):
            key.append(f"host={h.get('name', '')}:{h.get('port', '')}")
        for tag, attr in (("dir", "path"), ("device", "path"), ("adapter", "name")):
            for e in src.findall(tag):
                key.append(f"{tag}={e.get(attr, '')}")
        name = src.findtext("name")
        if name:
            key.append(f"name={name.strip()}")
    return PoolInfo(
        name=(root.findtext("name") or "").strip(),
        type=root.get("type", ""),
        active=active,
        capacity=_size(root.find("capacity"), "bytes"),
        allocation=_size(root.find("allocation"), "bytes"),
        target=(root.findtext("target/path") or "").strip().rstrip("/"),
        source=tuple(sorted(key)),
    )


@dataclass(frozen=True)
class NetInfo:
    name: str
    bridge: str
    active: bool


def parse_network(xml: str, active: bool) -> NetInfo:
    root = ET.fromstring(xml)
    br = root.find("bridge")
    return NetInfo((root.findtext("name") or "").strip(), br.get("name", "") if br is not None else "", active)


@dataclass(frozen=True)
class HostCpu:
    """What a host's capabilities say about it: its CPU and its UUID (empty when not given)."""

    vendor: str = ""
    model: str = ""
    uuid: str = ""


def parse_capabilities(xml: str) -> HostCpu:
    root = ET.fromstring(xml)
    uuid = (root.findtext("host/uuid") or "").strip()
    cpu = root.find("host/cpu")
    if cpu is None:
        return HostCpu(uuid=uuid)
    return HostCpu((cpu.findtext("vendor") or "").strip(), (cpu.findtext("model") or "").strip(), uuid)


@dataclass(slots=True)
class DomainRecord:
    """What one host says about one domain; the merge step turns records into VMs.

    A record starts from the host's bulk calls (name, state, stats); its definition (``info``
    beyond UUID and name) and guest addresses come from the domain's own calls, later.
    ``read_at`` orders those reads: the stamp (``HostConn.stamp()``) taken when the last one
    applied began, 0 before any; a read that began earlier than the one applied is dropped.
    """

    info: DomainInfo
    state: int = 0  # libvirt.VIR_DOMAIN_*
    reason: int = 0
    managed_save: bool = False
    ips: tuple[str, ...] = ()
    disk_sizes: dict[str, int] = field(default_factory=dict)  # target dev -> bytes
    stat_memory: int = 0  # bytes, balloon.current when reported
    stat_vcpus: int = 0
    stat_disks: tuple[str, ...] = ()  # disks whose size the last stats gave
    read_at: int = 0
    # The VM the merge made of this record last (it hands it out again while nothing changed).
    vm: VM | None = field(default=None, compare=False, repr=False)

    @classmethod
    def listed(cls, uuid: str, name: str) -> DomainRecord:
        """A domain known from the host's list only."""
        return cls(info=DomainInfo(uuid=uuid, name=name, memory=0, vcpus=0))

    @property
    def detailed(self) -> bool:
        """Its definition has been read: disks, NICs and the rest of ``info`` are known."""
        return self.read_at > 0
