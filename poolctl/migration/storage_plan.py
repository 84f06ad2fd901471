"""An evacuation whose VMs with disks on a host's local storage move with storage motion: those
disks copied to one SR the user chose (``poolctl evacuate HOST --sr SR``, the evacuate dialog's
SR). The VMs without such disks are planned as any evacuation's; the others are pre-checked as
a move with their local disks copied (``Backend.check_storage_migration``), and the
hypervisor's own evacuation verdict, which knows nothing of a copy, does not block them."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from poolctl.backends.base import Backend
from poolctl.migration.cross_pool import move_options
from poolctl.migration.many import destinations, precheck
from poolctl.migration.planner import Checks, Plan, Verdict, evacuees, plan_moves, with_blockers
from poolctl.model import VM, Host, StorageRepository

DiskMap = tuple[tuple[str, str], ...]


def local_disks(vm: VM, srs: Sequence[StorageRepository], sr: str) -> DiskMap:
    """(device, ``sr``) for each disk of ``vm`` on an SR that is not shared (not on ``sr``)."""
    shared = {s.ref for s in srs if s.shared}
    return tuple(
        (d.device, sr) for d in vm.disks if not d.cdrom and d.sr and d.sr not in shared and d.sr != sr and d.device
    )


def _storage_checks(
    backend: Backend, maps: dict[str, DiskMap], hosts: Sequence[str], rate_mib_s: float, network: str | None
) -> dict[str, dict[str, Verdict]]:
    def one(vm: str, host: str) -> Verdict:
        try:
            if network is not None:
                return backend.check_move(vm, host, move_options(disk_srs=maps[vm], network=network), rate_mib_s)
            return backend.check_storage_migration(vm, host, maps[vm], rate_mib_s)
        except Exception as exc:  # the plan says it per host, as check_hosts does
            return exc

    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="plan-sr") as ex:
        futures = {(vm, h): ex.submit(one, vm, h) for vm in maps for h in hosts}
    out: dict[str, dict[str, Verdict]] = {vm: {} for vm in maps}
    for (vm, h), fut in futures.items():
        out[vm][h] = fut.result()
    return out


def plan_evacuation_to_sr(
    backend: Backend,
    vms: Sequence[VM],
    hosts: Sequence[Host],
    srs: Sequence[StorageRepository],
    host: str,
    sr: str,
    rate_mib_s: float,
    to: Sequence[str] | None = None,
    network: str | None = None,
) -> Plan:
    """``plan_evacuation`` (poolctl.migration.many) with the local disks of the VMs that have
    some copied to ``sr`` on their way (every move over ``network`` when given)."""
    leaving = evacuees(vms, host)
    if not leaving:
        return Plan(())
    allowed = set(to) if to else None
    candidates = destinations(hosts, host, allowed)
    maps = {vm.ref: m for vm in leaving if (m := local_disks(vm, srs, sr))}
    checks: Checks = {
        **precheck(backend, [v for v in leaving if v.ref not in maps], candidates, network),
        **(_storage_checks(backend, maps, candidates, rate_mib_s, network) if candidates else {vm: {} for vm in maps}),
    }
    blockers = {vm: why for vm, why in backend.evacuation_blockers(host).items() if vm not in maps}
    return with_blockers(plan_moves(leaving, hosts, checks, to=allowed, storage=maps, network=network), blockers)
