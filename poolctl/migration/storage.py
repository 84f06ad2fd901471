"""Storage motion before a move, shared by ``poolctl migrate`` and the TUI dialog: where each disk
goes by default, the pre-check with or without a disk map, and the rate the copy is estimated at.

A disk map is ``MigrationOptions.disk_srs``: (device, SR ref) pairs, ``("*", SR ref)`` for every
disk. Only disks that change SR are put in it; an empty map is a plain pool migration.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from poolctl.audit import AuditLog, MigrationRecord
from poolctl.model import VM, Disk, MigrationCheck, StorageRepository

MIB = 1 << 20


def movable_disks(vm: VM) -> list[Disk]:
    """The disks storage motion copies: not CD drives, on a known SR, with a device name."""
    return [d for d in vm.disks if not d.cdrom and d.sr and d.device]


def free(sr: StorageRepository) -> int:
    return max(0, sr.size - sr.used)


def sr_choices(srs: Iterable[StorageRepository], host: str) -> list[StorageRepository]:
    """The disk SRs ``host`` sees: shared ones first, then by free space, most first."""
    seen = [s for s in srs if s.content_type != "iso" and host in s.hosts]
    return sorted(seen, key=lambda s: (not s.shared, -free(s), s.name.casefold(), s.ref))


def default_sr(disk: Disk, choices: Sequence[StorageRepository]) -> str | None:
    """The obvious SR for ``disk`` on a destination that sees ``choices``: its own SR when the
    destination sees it (shared storage: nothing is copied); else the shared SR with the most
    free space that holds the disk; else the SR with the most free space (the model does not
    carry XAPI's pool default SR). None when the destination sees no disk SR at all."""
    refs = {s.ref for s in choices}
    if disk.sr in refs:
        return disk.sr
    shared = [s for s in choices if s.shared and free(s) >= disk.size]
    if shared:
        return max(shared, key=free).ref
    return max(choices, key=free).ref if choices else None


def disk_map(vm: VM, chosen: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """(device, SR ref) for each disk whose chosen SR (device -> SR ref) is not its own."""
    return tuple((d.device, chosen[d.device]) for d in movable_disks(vm) if chosen.get(d.device, d.sr) != d.sr)


@dataclass(frozen=True)
class CopyRate:
    mib_s: float
    source: str  # where the figure comes from, in words


def copy_rate(pool: str, configured: float, records: Iterable[MigrationRecord] | None = None) -> CopyRate:
    """The rate a disk copy is estimated at: that of the newest storage motion of ``pool`` in
    the audit log (its disks and memory over the whole move, so rather low), else [migration]
    storage_rate."""
    if records is None:
        records, _problems = AuditLog().read()
    for rec in records:  # newest first
        rate = rec.measured.get("disk_rate_mib_s")
        if rec.pool == pool and rec.result == "success" and isinstance(rate, int | float) and rate > 0:
            return CopyRate(float(rate), f"measured: {rec.vm}'s move at {rec.time[11:16]} UTC")
    return CopyRate(configured, "[migration] storage_rate")


def measured_copy(disk_bytes: int, duration_s: float) -> dict[str, object]:
    """The audit record's figures of a move that copied disks (``copy_rate`` reads them)."""
    if disk_bytes <= 0:
        return {}
    out: dict[str, object] = {"disk_copied_mib": round(disk_bytes / MIB, 1)}
    if duration_s > 0:
        out["disk_rate_mib_s"] = round(disk_bytes / MIB / duration_s, 1)
    return out


# the hypervisor's objections a different choice of SRs can cure (XAPI's codes)
MAP_CODES = frozenset(
    {"SR_NOT_ATTACHED", "VM_REQUIRES_SR", "SR_FULL", "VDI_NOT_IN_MAP", "SR_DOES_NOT_SUPPORT_MIGRATION"}
)


def map_curable(check: MigrationCheck) -> bool:
    """Every problem of ``check`` is about where the disks go."""
    return bool(check.problems) and bool(check.codes) and set(check.codes) <= MAP_CODES
