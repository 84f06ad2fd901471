"""Per-host libvirt records into one pool: VMs deduplicated by UUID, storage pools
and networks that several hosts see merged into one object each; and the lookups of
hosts and VMs that the backend's operations share."""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

import libvirt

from poolctl.backends.base import NotFound
from poolctl.backends.kvm.hostconn import RUNNING_STATES, HostConn
from poolctl.backends.kvm.xmlinfo import DiskInfo, DomainRecord, NicInfo, PoolInfo
from poolctl.maintenance import HostMark
from poolctl.model import (
    VM,
    Disk,
    Host,
    Inventory,
    Network,
    Nic,
    Pool,
    PowerOp,
    PowerState,
    StorageRepository,
)

# Pool types whose backing storage lives off the host: the same source on two hosts is one SR.
NETWORK_POOL_TYPES = {"netfs", "iscsi", "iscsi-direct", "rbd", "gluster", "sheepdog", "vstorage"}
# The SR type shown for a libvirt pool type, where the two differ: an iSCSI LUN is "iscsi" whether
# the host's kernel logs in (pool type iscsi) or libvirt and QEMU do (iscsi-direct, libiscsi).
SR_TYPES = {"iscsi-direct": "iscsi"}

_OPS = {
    PowerState.RUNNING: (PowerOp.SHUTDOWN, PowerOp.REBOOT, PowerOp.SUSPEND, PowerOp.FORCE_OFF),
    PowerState.PAUSED: (PowerOp.RESUME, PowerOp.FORCE_OFF),
    PowerState.SUSPENDED: (PowerOp.RESUME, PowerOp.START),
    PowerState.HALTED: (PowerOp.START,),
}


def power_state(rec: DomainRecord) -> PowerState:
    s = rec.state
    if s in (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_BLOCKED, libvirt.VIR_DOMAIN_SHUTDOWN):
        return PowerState.RUNNING
    if s == libvirt.VIR_DOMAIN_PAUSED:
        return PowerState.PAUSED
    if s == libvirt.VIR_DOMAIN_PMSUSPENDED:
        return PowerState.SUSPENDED
    if s in (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_CRASHED):
        return PowerState.SUSPENDED if rec.managed_save else PowerState.HALTED
    return PowerState.UNKNOWN


Place = tuple[HostConn, DomainRecord]
NetOfNic = Callable[[HostConn, NicInfo], str | None]


@dataclass
class Merged:
    inventory: Inventory
    hosts: Sequence[HostConn]
    # uuid -> the hosts defining it, the one the VM is shown on first
    placements: dict[str, list[Place]] = field(default_factory=dict)
    sr_of_pool: dict[tuple[str, str], str] = field(default_factory=dict)  # (uri, pool) -> sr ref

    def vm_placement(self, ref: str) -> list[Place]:
        return self.placements.get(ref.removeprefix("vm:"), [])

    def locate(self, vm: str) -> Place:
        """Where an operation on ``vm`` (a ref or a UUID) goes: the host it is shown on."""
        places = self.vm_placement(vm)
        if not places:
            raise NotFound(f"no VM {vm!r} in pool {self.inventory.pool.name!r}")
        return places[0]

    def host(self, ref: str) -> HostConn:
        hc = next((hc for hc in self.hosts if hc.ref == ref), None)
        if hc is None:
            raise NotFound(f"no host {ref!r} in pool {self.inventory.pool.name!r}")
        return hc


def merge(
    pool: str,
    hosts: Sequence[HostConn],
    migrating: Collection[str],
    can_migrate: bool,
    shared_storage: Collection[str],
    mark_of: Callable[[HostConn], HostMark] = lambda _hc: HostMark(),
) -> Merged:
    """``shared_storage``: storage pool names the config says every host sees; ``mark_of``:
    poolctl's maintenance record of a host (libvirt keeps none)."""
    srs, sr_of_pool = _storage(shared_storage, hosts)
    networks, net_of_nic = _networks(hosts)
    placements = _placements(hosts)
    vms = []
    for uuid, places in placements.items():
        hc, rec = places[0]
        vms.append(_vm(hc, rec, sr_of_pool, net_of_nic, uuid in migrating, can_migrate))
    inv = Inventory(
        pool=Pool(ref=f"pool:{pool}", name=pool, backend="kvm", description=f"libvirt pool of {len(hosts)} host(s)"),
        hosts=tuple(_host(hc, mark_of(hc)) for hc in hosts),
        srs=tuple(srs),
        networks=tuple(networks),
        vms=tuple(sorted(vms, key=lambda v: v.name)),
    )
    return Merged(inv, tuple(hosts), placements, sr_of_pool)


def _host(hc: HostConn, mark: HostMark) -> Host:
    f = hc.facts
    return Host(
        ref=hc.ref,
        name=f.name,
        uuid=hc.uuid,
        address=f.address,
        enabled=not mark.disabled,
        maintenance=mark.disabled and mark.maintenance,
        evacuated=mark.evacuated if mark.disabled else (),
        live=hc.live,
        memory_total=f.memory_total,
        memory_free=f.memory_free,
        cpu_vendor=f.cpu_vendor,
        cpu_model=f.cpu_model,
        cpu_count=f.cpu_count,
        software_version=f.software_version,
    )


def _placements(hosts: Sequence[HostConn]) -> dict[str, list[Place]]:
    by_uuid: dict[str, list[Place]] = defaultdict(list)
    for hc in hosts:
        for uuid, rec in hc.domains.items():
            by_uuid[uuid].append((hc, rec))

    def rank(place: Place) -> int:
        hc, rec = place
        if rec.state in RUNNING_STATES:
            return 0 if hc.live else 1
        return 2 if rec.managed_save else 3 if hc.live else 4

    # sorted() is stable: among equals, the config's host order decides.
    return {uuid: places if len(places) == 1 else sorted(places, key=rank) for uuid, places in by_uuid.items()}


def _base_name(label: str) -> str:
    """The last part of a disk's path (``PurePosixPath(label).name`` for libvirt's absolute
    paths), without pathlib: it interns every part of every path it parses, a table that
    only grows (1 MB at 5,000 disks), and the merge asks for each disk on every rebuild."""
    return label.rstrip("/").rpartition("/")[2]


# The allowed operations of a VM by its state (and whether it may migrate): one shared tuple
# each rather than a tuple of new strings per VM.
_OPS_OF: dict[tuple[PowerState, bool], tuple[str, ...]] = {}


def _ops(state: PowerState, migrate: bool) -> tuple[str, ...]:
    got = _OPS_OF.get((state, migrate))
    if got is None:
        got = tuple(str(op) for op in _OPS.get(state, ())) + (("migrate",) if migrate else ())
        got = _OPS_OF.setdefault((state, migrate), got)
    return got


_MIGRATING = ("migrate",)


def _vm(
    hc: HostConn,
    rec: DomainRecord,
    sr_of_pool: dict[tuple[str, str], str],
    net_of_nic: NetOfNic,
    migrating: bool,
    can_migrate: bool,
) -> VM:
    """The VM a record shows. The one built last time is handed out again when it is what this
    one would be: every merge rebuilds the whole pool (each event, each batch of details) and
    a new model per VM made two copies of the pool live at once (the snapshot a consumer holds
    and the new one) and cost ~20 us per VM."""
    info = rec.info
    state = power_state(rec) if hc.live else PowerState.UNKNOWN
    running = rec.state in RUNNING_STATES
    ops = _ops(state, can_migrate and state in (PowerState.RUNNING, PowerState.PAUSED) and not migrating)
    host = hc.ref if running else None
    vcpus = rec.stat_vcpus or info.vcpus
    memory = rec.stat_memory or info.memory
    ips = rec.ips if running else ()
    disks = tuple(
        (
            d.volume or _base_name(d.label),
            d.device,
            rec.disk_sizes.get(d.device, 0),
            disk_sr(hc, d, sr_of_pool),
            d.cdrom,
        )
        for d in info.disks
    )
    nics = tuple((n.target, n.mac, net_of_nic(hc, n)) for n in info.nics)
    current = _MIGRATING if migrating else ()
    old = rec.vm
    if old is not None:
        same_disks = disks == tuple((d.name, d.device, d.size, d.sr, d.cdrom) for d in old.disks)
        same_nics = nics == tuple((n.device, n.mac, n.network) for n in old.nics)
        if (
            same_disks
            and same_nics
            and old.uuid == info.uuid
            and old.name == info.name
            and old.power_state == state
            and old.host == host
            and old.vcpus == vcpus
            and old.memory == memory
            and old.ips == ips
            and old.allowed_operations == ops
            and old.current_operations == current
            and old.description == info.description
            and old.devices_known == rec.detailed
        ):
            return old
    vm = VM(
        ref=f"vm:{info.uuid}",
        uuid=info.uuid,
        name=info.name,
        power_state=state,
        host=host,
        vcpus=vcpus,
        memory=memory,
        ips=ips,
        disks=old.disks
        if old is not None and same_disks
        else tuple(Disk(name=n, device=dev, size=size, sr=sr, cdrom=cd) for n, dev, size, sr, cd in disks),
        nics=old.nics
        if old is not None and same_nics
        else tuple(Nic(device=dev, mac=mac, network=net) for dev, mac, net in nics),
        allowed_operations=ops,
        current_operations=current,
        description=info.description,
        devices_known=rec.detailed,
    )
    rec.vm = vm
    return vm


def disk_sr(hc: HostConn, disk: DiskInfo, sr_of_pool: dict[tuple[str, str], str]) -> str | None:
    """The SR a disk lives on, as the host running it sees its storage pools."""
    if disk.pool:
        return sr_of_pool.get((hc.uri, disk.pool))
    if disk.network:
        name = disk.network.split(":", 1)[-1].split("/", 1)[0]
        for p in hc.pools.values():
            if p.type in NETWORK_POOL_TYPES and f"name={name}" in p.source:
                return sr_of_pool.get((hc.uri, p.name))
        return None
    best: PoolInfo | None = None
    for p in hc.pools.values():
        if p.target and disk.path.startswith(p.target + "/"):
            if best is None or len(p.target) > len(best.target):
                best = p
    return sr_of_pool.get((hc.uri, best.name)) if best else None


def _storage(
    shared_storage: Collection[str], hosts: Sequence[HostConn]
) -> tuple[list[StorageRepository], dict[tuple[str, str], str]]:
    groups: dict[tuple[str, str, str, tuple[str, ...]], list[tuple[HostConn, PoolInfo]]] = defaultdict(list)
    for hc in hosts:
        for p in hc.pools.values():
            groups[(p.name, p.type, p.target, p.source)].append((hc, p))
    srs: list[StorageRepository] = []
    sr_of_pool: dict[tuple[str, str], str] = {}
    used_refs: set[str] = set()
    for (name, ptype, _target, _source), members in groups.items():
        shared = name in shared_storage or (ptype in NETWORK_POOL_TYPES and len(members) > 1)
        parts = [members] if shared else [[m] for m in members]
        for part in parts:
            ref = f"sr:{name}" if shared else f"sr:{name}@{part[0][0].uri}"
            if ref in used_refs:
                ref = f"sr:{name}@{part[0][0].uri}"
            used_refs.add(ref)
            p = part[0][1]
            srs.append(
                StorageRepository(
                    ref=ref,
                    name=name,
                    type=SR_TYPES.get(ptype, ptype),
                    shared=shared,
                    size=p.capacity,
                    used=p.allocation,
                    hosts=tuple(hc.ref for hc, _ in part),
                )
            )
            for hc, _ in part:
                sr_of_pool[(hc.uri, name)] = ref
    return sorted(srs, key=lambda s: (s.name, s.ref)), sr_of_pool


def _networks(hosts: Sequence[HostConn]) -> tuple[list[Network], NetOfNic]:
    nets: dict[str, list[HostConn]] = defaultdict(list)
    bridge_of: dict[str, str] = {}
    for hc in hosts:
        for n in hc.networks.values():
            nets[n.name].append(hc)
            bridge_of.setdefault(n.name, n.bridge)
    # Plain bridges (interface type='bridge' outside any libvirt network).
    bridges: dict[str, list[HostConn]] = defaultdict(list)

    def net_of_nic(hc: HostConn, nic: NicInfo) -> str | None:
        if nic.kind == "network" and nic.source:
            return sys.intern(f"net:{nic.source}")  # one string for all the VMs on a network
        if nic.kind == "bridge" and nic.source:
            for n in hc.networks.values():
                if n.bridge == nic.source:
                    return f"net:{n.name}"
            return f"br:{nic.source}"
        return None

    for hc in hosts:
        for rec in hc.domains.values():
            for nic in rec.info.nics:
                if nic.kind == "bridge" and net_of_nic(hc, nic) == f"br:{nic.source}":
                    bridges.setdefault(nic.source, [])
    for br in bridges:
        bridges[br] = [hc for hc in hosts if hc.bridges is not None and br in hc.bridges] or [
            hc
            for hc in hosts
            if hc.bridges is None
            and any(n.kind == "bridge" and n.source == br for r in hc.domains.values() for n in r.info.nics)
        ]
    out = [
        Network(ref=f"net:{name}", name=name, bridge=bridge_of.get(name, ""), hosts=tuple(h.ref for h in hs))
        for name, hs in nets.items()
    ] + [Network(ref=f"br:{br}", name=br, bridge=br, hosts=tuple(h.ref for h in hs)) for br, hs in bridges.items()]
    return sorted(out, key=lambda n: n.ref), net_of_nic
