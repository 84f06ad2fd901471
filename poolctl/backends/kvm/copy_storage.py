"""Storage motion on libvirt ("copy storage"): a live migration with ``VIR_MIGRATE_NON_SHARED_DISK``
that copies the chosen disks over NBD into volumes poolctl creates beforehand in the chosen
storage pools of the destination.

libvirt wants the destination's disk to exist before the move (it pre-creates only plain files
in a pool holding the same path, never in another pool); so for each copied disk a volume of the
same name, capacity and format is made in the destination pool, the domain's XML for the
destination (``VIR_MIGRATE_PARAM_DEST_XML``) points the disk at it, and only the disks named in
``VIR_MIGRATE_PARAM_MIGRATE_DISKS`` are copied. A move that fails or is cancelled deletes the
volumes it made (the VM runs on from its old disks on the source); a move that succeeded deletes
the old copies on the source, as XAPI's storage motion does.

A disk -> SR map is ``MigrationOptions.disk_srs``: (target device, SR ref), ("*", SR ref) for
every disk. An SR here is a storage pool as the merge shows it (``sr:NAME`` when shared,
``sr:NAME@URI`` for one host's pool).
"""

from __future__ import annotations

import functools
import logging
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

import libvirt

from poolctl.backends.base import OperationRefused
from poolctl.backends.kvm.checks import check_migration
from poolctl.backends.kvm.errors import operation_error, words
from poolctl.backends.kvm.hostconn import HostConn
from poolctl.backends.kvm.merge import Merged, disk_sr
from poolctl.backends.kvm.migration import KvmMigration
from poolctl.format import size
from poolctl.model import MigrationCheck, MigrationPhase, MigrationProgress, MigrationResult, StorageRepository

log = logging.getLogger("poolctl.backends.kvm")

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
        d for d in _disk_elements(_live_xml(src, rec.info.uuid, name)) if d.get("device") not in ("cdrom", "floppy")
    ]
    devices = [_target(d) for d in disks]
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
            vol = src.conn.storageVolLookupByPath(_source_path(el))
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


def _disk_elements(xml: str | ET.Element) -> list[ET.Element]:
    root = ET.fromstring(xml) if isinstance(xml, str) else xml
    return root.findall("devices/disk")


def _target(el: ET.Element) -> str:
    t = el.find("target")
    return t.get("dev", "") if t is not None else ""


def _volume_name(el: ET.Element, label: str) -> str:
    src = el.find("source")
    if el.get("type") == "volume" and src is not None and src.get("volume"):
        return str(src.get("volume"))
    return label.rstrip("/").rpartition("/")[2] or label


def retarget(xml: str, paths: Mapping[str, tuple[str, str]]) -> str:
    """``xml`` with each disk of ``paths`` (device -> (disk type, path)) pointing at its new volume."""
    root = ET.fromstring(xml)
    for el in _disk_elements(root):
        new = paths.get(_target(el))
        if new is None:
            continue
        kind, path = new
        el.set("type", kind)
        old = el.find("source")
        source = ET.Element("source", {"file" if kind == "file" else "dev": path})
        if old is not None:
            # what the source carries besides where (a seclabel, a reservation) stays
            for child in list(old):
                source.append(child)
            el.insert(list(el).index(old), source)
            el.remove(old)
        else:
            el.insert(0, source)
    return ET.tostring(root, encoding="unicode")


def volume_xml(c: DiskCopy) -> str:
    return (
        f"<volume><name>{escape(c.volume)}</name><capacity unit='bytes'>{c.capacity}</capacity>"
        f"<allocation unit='bytes'>0</allocation><target><format type='{escape(c.fmt)}'/></target></volume>"
    )


# -- the move -----------------------------------------------------------------------------------


@dataclass
class Made:
    """A volume this move created on the destination (deleted again if the move does not succeed)."""

    copy: DiskCopy
    vol: libvirt.virStorageVol
    kind: str  # "file" or "block"
    path: str


def create_volumes(dst: HostConn, plan: CopyPlan, vm_name: str) -> list[Made]:
    """The destination volumes, made before the move; on a failure those made are deleted."""
    made: list[Made] = []
    try:
        for c in plan.moved:
            if dst.conn is None:
                raise libvirt.libvirtError("not connected")
            pool = dst.conn.storagePoolLookupByName(c.target_pool)
            vol = pool.createXML(volume_xml(c), 0)
            kind = "block" if vol.info()[0] == libvirt.VIR_STORAGE_VOL_BLOCK else "file"
            made.append(Made(c, vol, kind, vol.path()))
    except libvirt.libvirtError as err:
        delete_volumes(made)
        raise operation_error(
            "create the destination volume of", f"VM '{vm_name}'", dst.name, err, alive=dst.alive()
        ) from None
    return made


def delete_volumes(made: Sequence[Made]) -> list[str]:
    """Delete volumes this move made; what could not be deleted, in words."""
    left = []
    for m in made:
        try:
            m.vol.delete(0)
        except libvirt.libvirtError as err:
            left.append(f"volume {m.path}: {words(err)}")
    return left


class CopyStorageMigration(KvmMigration):
    """A KvmMigration whose disks listed in ``plan`` are copied to volumes made before it starts.

    Progress: "copying disks, then memory" while libvirt mirrors the disks (jobStats' disk_*),
    then the memory phases as for any move; the fraction runs over both (data_*)."""

    def __init__(self, *args: Any, plan: CopyPlan, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.plan = plan
        self._made: list[Made] = []
        self._memory = 0  # bytes of guest memory, read at the start

    def start(self) -> None:
        made = create_volumes(self._dst, self.plan, self._name)
        self._made = made
        try:
            self._memory = int(self._dom.info()[2]) * 1024
            self._flags |= libvirt.VIR_MIGRATE_NON_SHARED_DISK
            self._params[libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS] = [m.copy.device for m in made]
            paths = {m.copy.device: (m.kind, m.path) for m in made}
            self._params[libvirt.VIR_MIGRATE_PARAM_DEST_XML] = retarget(
                str(self._dom.XMLDesc(libvirt.VIR_DOMAIN_XML_MIGRATABLE)), paths
            )
            if self._flags & libvirt.VIR_MIGRATE_PERSIST_DEST:
                inactive = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_MIGRATABLE
                self._params[libvirt.VIR_MIGRATE_PARAM_PERSIST_XML] = retarget(str(self._dom.XMLDesc(inactive)), paths)
            super().start()
        except Exception:
            delete_volumes(made)
            raise

    def _finish(self, error: libvirt.libvirtError | None, new_dom: libvirt.virDomain | None) -> MigrationResult:
        result = super()._finish(error, new_dom)
        notes: list[str] = []
        try:
            if result.outcome == "success":
                notes = self._drop_old_copies()
            elif result.outcome in ("failed", "cancelled") and result.host == self.source:
                left = delete_volumes(self._made)
                notes = [f"left on {self._dst.name}: {x}" for x in left]
            elif self._made:
                # Where the VM runs is not known (contact lost, or it runs nowhere): the new copies
                # may be its disks now, so they stay.
                kept = ", ".join(m.path for m in self._made)
                notes = [
                    f"disk copies kept on {self._dst.name} ({kept}): the VM was not seen running on {self._src.name}"
                ]
        except Exception as err:  # cleaning up must not lose the outcome
            notes = [f"cleaning up the disk copies failed: {err}"]
        if not notes:
            return result
        return result.model_copy(update={"escalations": (*result.escalations, *notes)})

    def _drop_old_copies(self) -> list[str]:
        """After a move the VM's disks are the new volumes: the old ones on the source are deleted,
        but only those that are a storage pool's volumes and only once the destination's live
        definition shows the new path."""
        notes = []
        try:
            xml = self._dst.conn.lookupByUUIDString(self._uuid).XMLDesc(0) if self._dst.conn is not None else ""
        except libvirt.libvirtError as err:
            return [f"old disk copies kept on {self._src.name}: cannot read the VM on {self._dst.name} ({words(err)})"]
        now = {_target(el): _source_path(el) for el in _disk_elements(xml)} if xml else {}
        for m in self._made:
            c = m.copy
            if now.get(c.device) != m.path:
                notes.append(f"old copy of disk {c.device} kept on {self._src.name}: the VM does not show the new one")
                continue
            try:
                if self._src.conn is None:
                    raise libvirt.libvirtError("not connected")
                if c.source_pool:
                    old = self._src.conn.storagePoolLookupByName(c.source_pool).storageVolLookupByName(c.label)
                else:
                    old = self._src.conn.storageVolLookupByPath(c.label)
                old.delete(0)
                notes.append(f"disk {c.device}: now in pool '{c.target_pool}' on {self._dst.name}, old copy deleted")
            except libvirt.libvirtError as err:
                notes.append(f"old copy of disk {c.device} ({c.label}) kept on {self._src.name}: {words(err)}")
        return notes

    def _raw_progress(self, st: dict[str, Any], state: int, reason: int, best: float) -> MigrationProgress:
        disk_total = int(st.get("disk_total") or 0)
        memory_started = bool(st.get("memory_processed"))
        if not disk_total or memory_started or self._cancel_requested:
            return super()._raw_progress(st, state, reason, best)
        done = int(st.get("disk_processed") or 0)
        # the memory follows: the disks' share of the whole move is theirs in bytes (data_total
        # counts only the disks until the memory copy begins)
        fraction = max(best, min(1.0, done / (disk_total + self._memory)))
        self._seen_data = True
        return MigrationProgress(
            phase=MigrationPhase.COPYING_STORAGE,
            fraction=fraction,
            bytes_done=done,
            bytes_total=disk_total,
            cancellable=True,
            message=f"disks: {size(done)} of {size(disk_total)}",
        )


def _source_path(el: ET.Element) -> str:
    src = el.find("source")
    return (src.get("file") or src.get("dev") or "") if src is not None else ""


# -- what the backend calls ---------------------------------------------------------------------

_FINAL = {"SAME_HOST", "HOST_OFFLINE", "HOST_DISABLED"}  # the pre-check stops there: no disk to plan


def check_storage(
    merged: Merged, vm: str, host: str, disk_srs: Mapping[str, str], shared_storage: Sequence[str], rate_mib_s: float
) -> MigrationCheck:
    base = check_migration(merged, vm, host, shared_storage)
    if _FINAL & set(base.codes):
        return base
    plan = plan_copies(merged, vm, host, disk_srs, shared_storage)
    names = {s.ref: s.name for s in merged.inventory.srs}
    hosts = (merged.locate(vm)[0].name, merged.host(host).name)
    return storage_check(base, plan, names, rate_mib_s, hosts)


def copy_storage_handle(
    merged: Merged, vm: str, host: str, disk_srs: Mapping[str, str], shared_storage: Sequence[str]
) -> Callable[..., KvmMigration] | None:
    """The handle type of a move copying disks as ``disk_srs`` says (None when none is copied);
    refused when the map cannot work."""
    plan = plan_copies(merged, vm, host, disk_srs, shared_storage)
    if not plan.moved and not plan.problems:
        return None  # every disk stays where the destination sees it: a plain move
    if plan.problems:
        name = merged.locate(vm)[1].info.name
        raise OperationRefused(
            f"cannot migrate VM '{name}': " + "; ".join(p for _, p in plan.problems),
            code=plan.problems[0][0],
            host=merged.host(host).name,
        )
    return functools.partial(CopyStorageMigration, plan=plan)
