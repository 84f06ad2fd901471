"""Copy storage's plan and pre-checks: where each disk of a VM goes on the destination (a disk ->
SR map, ``MigrationOptions.disk_srs``: (target device, SR ref), ("*", SR ref) for every disk), read
from the source's live definition, and every reason the move would fail, per disk, in words.

An SR here is a storage pool as the merge shows it (``sr:NAME`` when shared, ``sr:NAME@URI`` for
one host's pool). The move itself is copy_storage.py.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import libvirt

from poolctl.backends.base import OperationRefused
from poolctl.backends.kvm.checks import check_migration
from poolctl.backends.kvm.errors import operation_error, words
from poolctl.backends.kvm.hostconn import HostConn
from poolctl.backends.kvm.merge import Merged, disk_sr
from poolctl.format import size
from poolctl.model import MigrationCheck, StorageRepository

# Pool types in which libvirt can create a volume of a given size (an iSCSI LUN cannot be made).
CREATABLE_POOL_TYPES = {"dir", "fs", "netfs", "logical", "disk", "zfs", "vstorage", "rbd", "gluster"}
Problems = list[tuple[str, str]]  # (code, words)


@dataclass(frozen=True)
class DiskCopy:
    """One disk of the VM and where it goes."""

    device: str
    label: str  # where it is now (a path, pool/volume, protocol:name), for messages
    source_sr: str | None
    target_sr: str | None
    volume: str = ""  # the name of the volume made on the destination
    capacity: int = 0  # bytes
    allocation: int = 0  # bytes in use on the source: what the copy moves
    fmt: str = "raw"
    target_pool: str = ""  # the destination's libvirt pool
    source_pool: str = ""  # the source's pool of a volume disk (its label is then the volume)

    @property
    def moves(self) -> bool:
        return self.target_sr is not None and self.source_sr != self.target_sr

    @property
    def size(self) -> int:
        return self.allocation or self.capacity


@dataclass(frozen=True)
class CopyPlan:
    copies: tuple[DiskCopy, ...]
    problems: tuple[tuple[str, str], ...] = ()
    devices: tuple[str, ...] = ()  # the disks the plan decided on (CD and floppy drives are not)

    @property
    def moved(self) -> tuple[DiskCopy, ...]:
        return tuple(c for c in self.copies if c.moves)

    @property
    def copy_bytes(self) -> int:
        return sum(c.size for c in self.moved)


def plan_copies(
    merged: Merged, vm: str, host: str, disk_srs: Mapping[str, str], shared_storage: Sequence[str]
) -> CopyPlan:
    """Where each disk of ``vm`` goes on ``host``, read from the source's live definition, and
    what would make the move fail (said per disk). A device the VM lacks is refused at once."""
    src, rec = merged.locate(vm)
    dst = merged.host(host)
    name = rec.info.name
    disks = [
        d for d in disk_elements(_live_xml(src, rec.info.uuid, name)) if d.get("device") not in ("cdrom", "floppy")
    ]
    devices = [disk_target(d) for d in disks]
    unknown = sorted(set(disk_srs) - set(devices) - {"*"})
    if unknown:
        raise OperationRefused(
            f"VM '{name}' has no disk {', '.join(unknown)} (its disks: {', '.join(devices) or 'none'})",
            code="NO_SUCH_DISK",
            host=src.name,
        )
    srs = {s.ref: s for s in merged.inventory.srs}
    problems: Problems = []
    copies: list[DiskCopy] = []
    for el, device in zip(disks, devices):
        info = next((d for d in rec.info.disks if d.device == device), None)
        current = disk_sr(src, info, merged.sr_of_pool) if info is not None else None
        target = disk_srs.get(device, disk_srs.get("*", current))
        label = info.label if info is not None else device
        if target == current:
            copies.append(DiskCopy(device, label, current, target))
            if info is not None and not (info.network and not info.pool):
                _check_stays(srs.get(current or ""), device, label, src, dst, shared_storage, problems)
            continue
        sr = srs.get(target or "")
        copy = _copy_of(src, dst, rec.info.uuid, el, device, label, current, sr, problems)
        if copy is not None:
            copies.append(copy)
    _check_space(dst, [c for c in copies if c.moves], srs, problems)
    return CopyPlan(tuple(copies), tuple(problems), tuple(devices))


def _check_stays(
    sr: StorageRepository | None,
    device: str,
    label: str,
    src: HostConn,
    dst: HostConn,
    shared_storage: Sequence[str],
    problems: Problems,
) -> None:
    """A disk left where it is must be on storage the destination sees."""
    if sr is not None and sr.shared and (dst.ref in sr.hosts or sr.name in shared_storage):
        return
    where = f"local pool '{sr.name}'" if sr is not None else f"no storage pool known to {src.name} ({label})"
    problems.append(
        (
            "VM_REQUIRES_SR",
            f"disk {device} is on {where}, which {dst.name} cannot see: "
            f"copy it with --sr SR (every disk) or --disk {device}=SR",
        )
    )


def _copy_of(
    src: HostConn,
    dst: HostConn,
    uuid: str,
    el: ET.Element,
    device: str,
    label: str,
    current: str | None,
    sr: StorageRepository | None,
    problems: Problems,
) -> DiskCopy | None:
    if sr is None or sr.content_type == "iso":
        problems.append(
            ("SR_NOT_FOUND", f"disk {device}: no storage pool {sr.name if sr else 'of that name'} to copy it to")
        )
        return None
    pool = dst.pools.get(sr.name)
    if dst.ref not in sr.hosts or pool is None:
        problems.append(("SR_NOT_ATTACHED", f"{dst.name} cannot see pool '{sr.name}' (disk {device})"))
        return None
    if not pool.active:
        problems.append(("SR_NOT_ATTACHED", f"pool '{sr.name}' is not active on {dst.name} (disk {device})"))
        return None
    if pool.type not in CREATABLE_POOL_TYPES:
        problems.append(
            (
                "SR_OPERATION_NOT_SUPPORTED",
                f"pool '{sr.name}' ({pool.type}) on {dst.name} cannot hold a new volume for disk {device}",
            )
        )
        return None
    if el.get("type") not in ("file", "block", "volume"):
        problems.append(
            (
                "VDI_NOT_MIGRATABLE",
                f"disk {device} ({label}) is a {el.get('type')} disk: libvirt copies only file, block and volume disks",
            )
        )
        return None
    drv = el.find("driver")
    fmt = (drv.get("type") if drv is not None else None) or "raw"
    try:
        capacity, allocation = _sizes(src, uuid, el, device)
    except libvirt.libvirtError as err:
        problems.append(("VDI_NOT_MIGRATABLE", f"cannot read the size of disk {device} on {src.name}: {words(err)}"))
        return None
    volume = _volume_name(el, label)
    if dst.conn is not None:
        try:
            dst.conn.storagePoolLookupByName(sr.name).storageVolLookupByName(volume)
            problems.append(
                ("VDI_EXISTS", f"pool '{sr.name}' on {dst.name} already has a volume '{volume}' (disk {device})")
            )
            return None
        except libvirt.libvirtError:
            pass  # none of that name: it is made before the move
    src_el = el.find("source")
    source_pool = str(src_el.get("pool") or "") if el.get("type") == "volume" and src_el is not None else ""
    label = volume if source_pool else label
    return DiskCopy(device, label, current, sr.ref, volume, int(capacity), int(allocation), fmt, sr.name, source_pool)


def _sizes(src: HostConn, uuid: str, el: ET.Element, device: str) -> tuple[int, int]:
    """(capacity, allocation) of a disk: its volume's, as its pool says (what the inventory
    shows), else what the running domain says of it."""
    if src.conn is None:
        raise libvirt.libvirtError("not connected")
    s = el.find("source")
    try:
        if el.get("type") == "volume" and s is not None:
            vol = src.conn.storagePoolLookupByName(s.get("pool", "")).storageVolLookupByName(s.get("volume", ""))
        else:
            vol = src.conn.storageVolLookupByPath(source_path(el))
        _kind, capacity, allocation = vol.info()
    except libvirt.libvirtError:
        capacity, allocation, _physical = src.conn.lookupByUUIDString(uuid).blockInfo(device)
    return int(capacity), int(allocation)


def _check_space(
    dst: HostConn, moved: list[DiskCopy], srs: Mapping[str, StorageRepository], problems: Problems
) -> None:
    need: dict[str, int] = {}
    for c in moved:
        need[c.target_pool] = need.get(c.target_pool, 0) + c.capacity
    for pool_name, n in need.items():
        try:
            free = int(dst.conn.storagePoolLookupByName(pool_name).info()[3]) if dst.conn is not None else 0
        except libvirt.libvirtError:
            continue  # not knowing is no reason to refuse: creating the volume says it
        if n > free:
            problems.append(
                (
                    "SR_FULL",
                    f"not enough space in pool '{pool_name}' on {dst.name}: "
                    f"the copy needs {size(n)}, {size(free)} free",
                )
            )


def copy_words(
    plan: CopyPlan, names: Mapping[str, str], rate_mib_s: float, hosts: tuple[str, str] = ("", "")
) -> tuple[str, ...]:
    """A line per disk copied, and the estimate: size / rate. ``hosts``: (source, destination)."""
    src, dst = (f" ({h})" if h else "" for h in hosts)
    lines = [
        f"disk {c.device}: {size(c.size)} from '{names.get(c.source_sr or '', c.label)}'{src} "
        f"to '{names.get(c.target_sr or '', c.target_pool)}'{dst}"
        for c in plan.moved
    ]
    total = plan.copy_bytes
    if lines and rate_mib_s > 0:
        seconds = total / (rate_mib_s * 1024 * 1024)
        took = f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"
        lines.append(f"{size(total)} in all: about {took} at {rate_mib_s:g} MiB/s")
    return tuple(lines)


def storage_check(
    base: MigrationCheck, plan: CopyPlan, names: Mapping[str, str], rate_mib_s: float, hosts: tuple[str, str]
) -> MigrationCheck:
    """The plain pre-check with its shared-storage verdicts on the planned disks replaced by the
    map's (a CD's ISO the destination cannot see still stops the move)."""
    planned = tuple(f"disk {d} " for d in plan.devices)
    kept = [(c, p) for c, p in zip(base.codes, base.problems) if not (c == "DISK_NOT_SHARED" and p.startswith(planned))]
    kept += [(c, p) for c, p in plan.problems]
    return base.model_copy(
        update={
            "problems": tuple(p for _, p in kept),
            "codes": tuple(dict.fromkeys(c for c, _ in kept)),
            "copies": copy_words(plan, names, rate_mib_s, hosts),
            "copy_bytes": plan.copy_bytes,
        }
    )


# -- the domain's XML ---------------------------------------------------------------------------


def _live_xml(hc: HostConn, uuid: str, name: str) -> str:
    try:
        if hc.conn is None:
            raise libvirt.libvirtError("not connected")
        return str(hc.conn.lookupByUUIDString(uuid).XMLDesc(libvirt.VIR_DOMAIN_XML_MIGRATABLE))
    except libvirt.libvirtError as err:
        raise operation_error("read", f"VM '{name}'", hc.name, err, alive=hc.alive()) from None


def disk_elements(xml: str | ET.Element) -> list[ET.Element]:
    root = ET.fromstring(xml) if isinstance(xml, str) else xml
    return root.findall("devices/disk")


def disk_target(el: ET.Element) -> str:
    t = el.find("target")
    return t.get("dev", "") if t is not None else ""


def _volume_name(el: ET.Element, label: str) -> str:
    src = el.find("source")
    if el.get("type") == "volume" and src is not None and src.get("volume"):
        return str(src.get("volume"))
    return label.rstrip("/").rpartition("/")[2] or label


def source_path(el: ET.Element) -> str:
    src = el.find("source")
    return (src.get("file") or src.get("dev") or "") if src is not None else ""


# -- what the backend calls ---------------------------------------------------------------------

_FINAL = {"SAME_HOST", "HOST_OFFLINE", "HOST_DISABLED"}  # the pre-check stops there: no disk to plan


def check_storage(
    merged: Merged, vm: str, host: str, disk_srs: Mapping[str, str], shared_storage: Sequence[str], rate_mib_s: float
) -> MigrationCheck:
    """``Backend.check_storage_migration``: the plain pre-check, the map's verdicts per disk
    instead of its shared-storage ones, and what is copied with the estimate at ``rate_mib_s``."""
    base = check_migration(merged, vm, host, shared_storage)
    if _FINAL & set(base.codes):
        return base
    plan = plan_copies(merged, vm, host, disk_srs, shared_storage)
    names = {s.ref: s.name for s in merged.inventory.srs}
    hosts = (merged.locate(vm)[0].name, merged.host(host).name)
    return storage_check(base, plan, names, rate_mib_s, hosts)
