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

Where each disk goes and the pre-checks: copy_plan.py.
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
from poolctl.backends.kvm.copy_plan import CopyPlan, DiskCopy, disk_elements, disk_target, plan_copies, source_path
from poolctl.backends.kvm.errors import operation_error, words
from poolctl.backends.kvm.hostconn import HostConn
from poolctl.backends.kvm.merge import Merged
from poolctl.backends.kvm.migration import KvmMigration
from poolctl.backends.kvm.progress import JobProgress
from poolctl.model import MigrationProgress, MigrationResult

log = logging.getLogger("poolctl.backends.kvm")


# -- the domain's XML for the destination -----------------------------------------------------


def retarget(xml: str, paths: Mapping[str, tuple[str, str]]) -> str:
    """``xml`` with each disk of ``paths`` (device -> (disk type, path)) pointing at its new volume."""
    root = ET.fromstring(xml)
    for el in disk_elements(root):
        new = paths.get(disk_target(el))
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
    then the memory phases as for any move; the fraction runs over both (data_*): progress.py."""

    def __init__(self, *args: Any, plan: CopyPlan, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.plan = plan
        self._made: list[Made] = []
        self._reading = JobProgress(self._dst.name, disks_first=True)  # .memory: read at the start
        # libvirt paces the disk mirror with the migration's bandwidth too, which would stretch
        # the copy for a cap meant for the memory's last pass: it is set once the job runs
        # (migrateSetMaxSpeed then paces the memory copy only)
        self._memory_cap: int | None = None

    def start(self) -> None:
        made = create_volumes(self._dst, self.plan, self._name)
        self._made = made
        try:
            self._reading.memory = int(self._dom.info()[2]) * 1024
            self._flags |= libvirt.VIR_MIGRATE_NON_SHARED_DISK
            self._memory_cap = self._params.pop(libvirt.VIR_MIGRATE_PARAM_BANDWIDTH, None)
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

    def _settled(self, result: MigrationResult) -> MigrationResult:
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
        now = {disk_target(el): source_path(el) for el in disk_elements(xml)} if xml else {}
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

    def _progress(self, st: dict[str, Any], state: int, reason: int, best: float) -> MigrationProgress:
        if self._memory_cap and st.get("type"):
            cap, self._memory_cap = self._memory_cap, None
            try:
                self._dom.migrateSetMaxSpeed(int(cap), 0)
            except libvirt.libvirtError as err:
                self._steering.escalations.append(f"bandwidth cap {cap} MiB/s not applied ({words(err)})")
        return super()._progress(st, state, reason, best)


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
