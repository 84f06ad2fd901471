"""Storage motion on XAPI, as XenCenter and Xen Orchestra do it: ``host.migrate_receive`` on
the destination gives the map of its services (and a session for them), ``VM.assert_can_migrate``
checks a disk -> SR map against it, ``Async.VM.migrate_send`` moves the disks, then the memory.

The map is built here from the VM's own disks: every non-empty, non-CD VBD's VDI goes to the SR
its device is given, or stays on its SR (XAPI wants every VDI in the map). What poolctl can
tell from records (a disk left on an SR the destination cannot see, a target SR it cannot see,
not enough free space) is said in words before XAPI is asked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import XenAPI

from poolctl.backends.base import OperationRefused
from poolctl.backends.xen.errors import size_words
from poolctl.backends.xen.translate import NULL, is_ref, to_int
from poolctl.backends.xen.words import Namer


@dataclass(frozen=True)
class DiskMove:
    device: str
    vdi: str
    size: int  # bytes the copy moves (physical_utilisation, else virtual_size)
    source_sr: str
    target_sr: str

    @property
    def moves(self) -> bool:
        return self.source_sr != self.target_sr


def disk_moves(x: XenAPI._Dispatcher, vm_rec: Mapping[str, object], disk_srs: Mapping[str, str]) -> list[DiskMove]:
    """The VM's disks with where each goes; ``disk_srs`` maps a device (xvda, or the
    userdevice number) to an SR ref, "*" every disk. A device the VM lacks is refused."""
    out: list[DiskMove] = []
    seen: set[str] = set()
    for vbd_ref in vm_rec.get("VBDs") or ():  # type: ignore[attr-defined]
        vbd = x.VBD.get_record(vbd_ref)
        if vbd.get("empty") or str(vbd.get("type", "")).lower() == "cd" or not is_ref(vbd.get("VDI")):
            continue
        vdi = x.VDI.get_record(vbd["VDI"])
        names = {str(vbd.get("device") or ""), str(vbd.get("userdevice") or "")} - {""}
        device = str(vbd.get("device") or vbd.get("userdevice") or vbd_ref)
        target = next((disk_srs[n] for n in names if n in disk_srs), disk_srs.get("*", vdi.get("SR", NULL)))
        seen |= names
        size = to_int(vdi.get("physical_utilisation")) or to_int(vdi.get("virtual_size"))
        out.append(DiskMove(device, str(vbd["VDI"]), size, str(vdi.get("SR", NULL)), str(target)))
    unknown = sorted(set(disk_srs) - seen - {"*"})
    if unknown:
        have = ", ".join(d.device for d in out) or "none"
        raise OperationRefused(
            f"{vm_rec.get('name_label') or 'the VM'} has no disk {', '.join(unknown)} (its disks: {have})",
            code="NO_SUCH_DISK",
        )
    return out


def record_problems(
    x: XenAPI._Dispatcher, moves: list[DiskMove], host_ref: str, host_name: str, name_of: Namer
) -> list[tuple[str, str]]:
    """(code, words) for a map XAPI would refuse or fail on, read from the SRs' records."""
    out: list[tuple[str, str]] = []
    need: dict[str, int] = {}
    seen_on: dict[str, bool] = {}
    for m in moves:
        sr = m.target_sr
        if sr not in seen_on:
            pbds = [x.PBD.get_record(p) for p in x.SR.get_PBDs(sr)]
            seen_on[sr] = any(p.get("host") == host_ref and p.get("currently_attached") for p in pbds)
        if seen_on[sr]:
            if m.moves:
                need[sr] = need.get(sr, 0) + m.size
            continue
        kind = "shared SR" if x.SR.get_shared(sr) else "local SR"
        if m.moves:
            out.append(("SR_NOT_ATTACHED", f"{host_name} cannot see {kind} '{name_of(sr)}' (disk {m.device})"))
        else:
            out.append(
                (
                    "VM_REQUIRES_SR",
                    f"disk {m.device} is on {kind} '{name_of(sr)}', which {host_name} cannot see: "
                    f"copy it with --sr SR (every disk) or --disk {m.device}=SR",
                )
            )
    for sr, size in need.items():
        free = to_int(x.SR.get_physical_size(sr)) - to_int(x.SR.get_physical_utilisation(sr))
        if size > free:
            out.append(
                (
                    "SR_FULL",
                    f"not enough space on SR '{name_of(sr)}': the copy needs {size_words(size)}, "
                    f"it has {size_words(max(free, 0))} free",
                )
            )
    return out


def vdi_map(moves: list[DiskMove]) -> dict[str, str]:
    return {m.vdi: m.target_sr for m in moves}


def receive(x: XenAPI._Dispatcher, host: str, network: str | None = None) -> dict[str, str]:
    """``host.migrate_receive`` over ``network``, by default the destination's management
    network. The map holds a session of the destination: it is passed on to XAPI, never shown
    or logged."""
    if network is None:
        network = x.PIF.get_network(x.host.get_management_interface(host))
    return dict(x.host.migrate_receive(host, network, {}))


def copy_words(moves: list[DiskMove], name_of: Namer, rate_mib_s: float) -> tuple[str, ...]:
    """A line per disk that is copied, and the estimate: size / rate."""
    lines = [
        f"disk {m.device}: {size_words(m.size)} from '{name_of(m.source_sr)}' to '{name_of(m.target_sr)}'"
        for m in moves
        if m.moves
    ]
    total = sum(m.size for m in moves if m.moves)
    if lines and rate_mib_s > 0:
        seconds = total / (rate_mib_s * 1024 * 1024)
        lines.append(f"{size_words(total)} in all: about {_duration(seconds)} at {rate_mib_s:g} MiB/s")
    return tuple(lines)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
