"""A move to a host of another XAPI pool, as XenCenter and Xen Orchestra do it: the destination
pool's own connection asks its ``host.migrate_receive`` for the map (a session of that pool and
the URLs of its services), the source pool's ``VM.assert_can_migrate`` checks the disk and NIC
maps against it, and ``Async.VM.migrate_send`` on the source carries the VM over.

The maps are built here: every disk goes to the SR its device is given, else the destination
pool's default SR (a disk cannot stay behind); every NIC to the destination's network of the same
name (there is no other way to tell which network of another pool is "the same"). What the
records tell (a network missing, an SR the host cannot see, not enough room) is said in words
before XAPI is asked. The map's session id is a secret of both pools: it is passed to XAPI only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import XenAPI

from poolctl.backends.xen.storage_motion import DiskMove, disk_moves, record_problems
from poolctl.backends.xen.translate import NULL, is_ref
from poolctl.backends.xen.words import Namer


def management_network(x: XenAPI._Dispatcher, host: str) -> str:
    return str(x.PIF.get_network(x.host.get_management_interface(host)))


def network_problems(
    x: XenAPI._Dispatcher, network: str, host: str, host_name: str, name_of: Namer
) -> list[tuple[str, str]]:
    """Why ``host`` cannot receive a move over ``network`` (host.migrate_receive's errors, read
    from the records): no PIF on it there, or a PIF without an address."""
    pifs = [x.PIF.get_record(p) for p in x.network.get_PIFs(network)]
    mine = [p for p in pifs if p.get("host") == host]
    if not mine:
        return [
            (
                "HOST_CANNOT_ATTACH_NETWORK",
                f"{host_name} has no PIF on network '{name_of(network)}': it cannot receive a migration over it "
                "(choose a network the host has an interface on, or the default: its management network)",
            )
        ]
    pif = mine[0]
    if not pif.get("IP"):
        mode = str(pif.get("ip_configuration_mode") or "None")
        code = "INTERFACE_HAS_NO_IP" if mode == "DHCP" else "PIF_HAS_NO_NETWORK_CONFIGURATION"
        return [
            (
                code,
                f"{host_name}'s interface {pif.get('device') or '?'} on network '{name_of(network)}' has no IP "
                f"address (ip_configuration_mode {mode}): a migration cannot be received over it",
            )
        ]
    return []


def vif_map(
    x: XenAPI._Dispatcher,
    vm_rec: Mapping[str, object],
    dest: XenAPI._Dispatcher,
    host: str,
    host_name: str,
    pool_name: str,
) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Each VIF -> the destination pool's network of the same name with a PIF on ``host``."""
    by_name: dict[str, list[str]] = {}
    on_host = {str(p.get("network")) for p in dest.PIF.get_all_records().values() if p.get("host") == host}
    for ref, rec in dest.network.get_all_records().items():
        by_name.setdefault(str(rec.get("name_label") or ""), []).append(ref)
    out: dict[str, str] = {}
    problems: list[tuple[str, str]] = []
    for vif in vm_rec.get("VIFs") or ():  # type: ignore[attr-defined]
        net = x.VIF.get_network(vif)
        name = str(x.network.get_name_label(net)) if is_ref(net) else ""
        device = x.VIF.get_device(vif)
        candidates = [n for n in by_name.get(name, []) if n in on_host]
        if len(candidates) == 1:
            out[vif] = candidates[0]
        elif not by_name.get(name):
            problems.append(
                ("VIF_NOT_IN_MAP", f"NIC {device} is on network '{name}', which pool {pool_name} has no network named")
            )
        elif not candidates:
            problems.append(
                ("VM_REQUIRES_NETWORK", f"NIC {device}: network '{name}' of pool {pool_name} is missing on {host_name}")
            )
        else:
            problems.append(
                ("VIF_NOT_IN_MAP", f"NIC {device}: pool {pool_name} has {len(candidates)} networks '{name}'")
            )
    return out, problems


def with_default_sr(disk_srs: Mapping[str, str], dest: XenAPI._Dispatcher) -> dict[str, str]:
    """Disks not named go to the destination pool's default SR (they cannot stay behind)."""
    out = dict(disk_srs)
    if "*" not in out:
        (pool,) = dest.pool.get_all()
        default = dest.pool.get_default_SR(pool)
        if is_ref(default) and default != NULL:
            out["*"] = str(default)
    return out


NETWORK_CODES = ("HOST_CANNOT_ATTACH_NETWORK", "PIF_HAS_NO_NETWORK_CONFIGURATION", "INTERFACE_HAS_NO_IP")


@dataclass
class There:
    """What the destination pool's records say of a move to its ``host``."""

    host_rec: dict[str, object]
    metrics: dict[str, object]
    host_name: str
    network: str  # the migration network: the one asked for, else the host's management network
    vifs: dict[str, str]  # VIF -> the destination's network
    moves: list[DiskMove]
    problems: list[tuple[str, str]]


def cross_plan(
    x: XenAPI._Dispatcher,
    vm_rec: Mapping[str, object],
    dest: XenAPI._Dispatcher,
    host: str,
    disk_srs: Mapping[str, str],
    network: str | None,
    pool_name: str,
    name_of: Namer,
) -> There:
    """The maps of a move of the VM of ``vm_rec`` (read on ``x``) to ``host`` of the pool
    ``dest`` reads, and what its records object to."""
    host_rec = dest.host.get_record(host)
    metrics = dest.host_metrics.get_record(host_rec["metrics"]) if is_ref(host_rec.get("metrics")) else {}
    host_name = str(host_rec.get("name_label") or host)
    net = network or management_network(dest, host)
    problems = network_problems(dest, net, host, host_name, name_of)
    vifs, vif_problems = vif_map(x, vm_rec, dest, host, host_name, pool_name)
    moves = disk_moves(x, vm_rec, with_default_sr(disk_srs, dest))
    for m in moves:
        if not m.moves:  # no SR given and no default SR there: it would stay in this pool
            problems.append(
                (
                    "VDI_NOT_IN_MAP",
                    f"disk {m.device} must be copied to an SR of pool {pool_name}, which has no default SR: "
                    f"give --sr SR or --disk {m.device}=SR",
                )
            )
    problems += record_problems(dest, [m for m in moves if m.moves], host, host_name, name_of)
    return There(host_rec, metrics, host_name, net, vifs, moves, problems + vif_problems)
