"""`poolctl migrate VM HOST --sr SR | --disk DEVICE=SR`: the disk map of a storage motion,
from names the user gives, and its pre-check lines (what is copied, the estimate)."""

from __future__ import annotations

from collections.abc import Sequence

from poolctl.errors import ExitCode, Failure
from poolctl.model import VM, Inventory, StorageRepository
from poolctl.safe_text import quoted, shown


def find_sr(inv: Inventory, key: str, pool: str) -> StorageRepository:
    """An SR by name, uuid or ref; a name several SRs share is refused (give the uuid)."""
    disks = [s for s in inv.srs if s.content_type != "iso"]
    by_id = [s for s in disks if key and key in (s.ref, s.uuid)]
    found = by_id or [s for s in disks if s.name == key]
    if len(found) == 1:
        return found[0]
    if found:
        uuids = ", ".join(shown(s.uuid or s.ref) for s in found)
        raise Failure(
            f"{quoted(key)} names {len(found)} SRs in pool {quoted(pool)}: {uuids}; give a uuid", ExitCode.NO_MATCH
        )
    known = ", ".join(sorted(shown(s.name) for s in disks)) or "none"
    raise Failure(f"pool {quoted(pool)} has no SR named {quoted(key)}; SRs: {known}", ExitCode.NO_MATCH)


def disk_srs(inv: Inventory, vm: VM, sr: str | None, disks: Sequence[str], pool: str) -> tuple[tuple[str, str], ...]:
    """("*", SR ref) for --sr and (device, SR ref) for each --disk, checked against the VM's disks."""
    out: list[tuple[str, str]] = []
    if sr:
        out.append(("*", find_sr(inv, sr, pool).ref))
    devices = {d.device for d in vm.disks if not d.cdrom}
    for item in disks:
        device, sep, key = item.partition("=")
        if not sep or not device or not key:
            raise Failure(f"--disk expects DEVICE=SR, e.g. xvda='Local storage'; got {quoted(item)}")
        if vm.devices_known and device not in devices:
            have = ", ".join(sorted(shown(d) for d in devices)) or "none"
            raise Failure(f"{shown(vm.name)} has no disk {quoted(device)}; its disks: {have}", ExitCode.NO_MATCH)
        out.append((device, find_sr(inv, key, pool).ref))
    return tuple(out)
