"""Migration pre-checks on XAPI: our words from the records first, then XAPI's own verdict —
``VM.assert_can_boot_here`` for a pool migration, ``host.migrate_receive`` and
``VM.assert_can_migrate`` with the disk map for a storage motion, a chosen network or a host of
a linked pool. The migrate dialog runs one per host at once, on the backend's pooled sessions."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import XenAPI

from poolctl.backends.base import BackendError
from poolctl.backends.xen.cross_pool import NETWORK_CODES, cross_plan, network_problems
from poolctl.backends.xen.links import XenPool, named, receive_migration
from poolctl.backends.xen.migration import merge_xapi_verdict, own_problems
from poolctl.backends.xen.storage_motion import DiskMove, copy_words, disk_moves, receive, record_problems, vdi_map
from poolctl.backends.xen.translate import CLASSES, Raw, Record, is_ref, name_in, project, project_all
from poolctl.backends.xen.words import Namer
from poolctl.model import MigrationCheck

SHARED_TABLES = ("sr", "pbd", "network", "pif")  # what migration pre-checks read besides the VM's own devices


def _cached(table: dict[str, Record], refs: Iterable[str]) -> dict[str, Record]:
    """The records of ``refs`` that ``table`` holds, in a dict of their own."""
    return {r: rec for r in refs if (rec := table.get(r)) is not None}


def _fill(table: dict[str, Record], refs: Iterable[str], cls: str, get_record: Callable[[str], Record]) -> None:
    """Read the records of ``refs`` that ``table`` lacks, one by one; one gone meanwhile is left out."""
    for ref in refs:
        if ref not in table:
            try:
                table[ref] = project(cls, get_record(ref))
            except XenAPI.Failure:
                pass


def topology(pool: XenPool, session: XenAPI.Session, vm: Record) -> Raw:
    """What the pre-checks read: the VM's own VBDs, VDIs and VIFs, and the pool's SRs, PBDs,
    networks and PIFs (a few per host), from the live cache. With a 64-host pool the migrate
    dialog runs 63 checks at once, so nothing here grows with the number of VMs: a record
    the cache lacks is read on its own, the small tables per class only without a cache."""
    x = session.xenapi
    own: dict[str, list[str]] = {"vbd": list(vm.get("VBDs") or ()), "vif": list(vm.get("VIFs") or ())}
    with pool._raw_lock:
        raw = pool._raw  # copies below: the event thread keeps updating the live tables
        topo: Raw = {cls: dict(raw.get(cls, {})) for cls in SHARED_TABLES}
        for cls, refs in own.items():
            topo[cls] = _cached(raw.get(cls, {}), refs)
        cached = bool(raw)
    for cls in SHARED_TABLES:
        if not cached:
            topo[cls] = project_all(cls, getattr(x, CLASSES[cls]).get_all_records())
    for cls, refs in own.items():
        _fill(topo[cls], refs, cls, getattr(x, CLASSES[cls]).get_record)
    vdis = {ref for v in topo["vbd"].values() if is_ref(ref := v.get("VDI"))}
    with pool._raw_lock:
        topo["vdi"] = _cached(pool._raw.get("vdi", {}), vdis)
    _fill(topo["vdi"], vdis, "vdi", x.VDI.get_record)
    return topo


def _verdict(
    vm: str, host: str, problems: list[tuple[str, str]], moves: list[DiskMove], name_of: Namer, rate_mib_s: float
) -> MigrationCheck:
    return MigrationCheck(
        vm=vm,
        host=host,
        problems=tuple(p for _, p in problems),
        codes=tuple(dict.fromkeys(c for c, _ in problems)),
        copies=copy_words(moves, name_of, rate_mib_s),
        copy_bytes=sum(m.size for m in moves if m.moves),
    )


def pre_check(
    pool: XenPool, vm: str, host: str, disk_srs: dict[str, str] | None, rate_mib_s: float, network: str | None = None
) -> MigrationCheck:
    """A move of ``vm`` to ``host`` of ``pool`` itself; ``disk_srs`` None: a pool migration."""

    def run(session: XenAPI.Session) -> MigrationCheck:
        x = session.xenapi
        vm_rec = x.VM.get_record(vm)
        host_rec = x.host.get_record(host)
        metrics = x.host_metrics.get_record(host_rec["metrics"]) if is_ref(host_rec.get("metrics")) else {}
        vm_name = vm_rec.get("name_label") or vm
        host_name = host_rec.get("name_label") or host
        topo = topology(pool, session, vm_rec)

        def name_of(ref: str) -> str:
            return name_in(topo, ref) or pool._name_of(ref)

        problems = own_problems(vm_rec, vm_name, host, host_rec, metrics, topo, name_of)
        moves = disk_moves(x, vm_rec, disk_srs) if disk_srs is not None else []
        if disk_srs is not None:  # the SRs are the map's business: said per disk
            problems = [p for p in problems if p[0] != "VM_REQUIRES_SR"]
            problems += record_problems(x, moves, host, host_name, name_of)
        if network is not None:
            problems += network_problems(x, network, host, host_name, name_of)
        blocking = ("VM_BAD_POWER_STATE", "VM_ALREADY_ON_HOST", *NETWORK_CODES)
        if not any(c in blocking for c, _ in problems):
            try:
                if disk_srs is None:
                    x.VM.assert_can_boot_here(vm, host)
                else:
                    dest = receive(x, host, network)
                    pool.connector.keep_secret(dest["session_id"])
                    try:
                        x.VM.assert_can_migrate(vm, dest, True, vdi_map(moves), {}, {}, {})
                    finally:  # a pre-check per host and VM: none may leave a session behind
                        pool.connector.logout_handle(dest["session_id"])
            except XenAPI.Failure as exc:
                pool.connector.remember(session)
                code, params = pool.errors.parts(exc)
                problems = merge_xapi_verdict(problems, code, params, vm_name, host_name, name_of)
        return _verdict(vm, host, problems, moves, name_of, rate_mib_s)

    return pool._call(f"checking a move of VM {vm} to host {host}", run)


def check_to(
    pool: XenPool,
    vm: str,
    target: XenPool,
    host: str,
    disk_srs: dict[str, str],
    rate_mib_s: float,
    network: str | None,
) -> MigrationCheck:
    """A move of ``vm`` to ``host`` of the linked pool ``target``: our words from both pools'
    records, then ``VM.assert_can_migrate`` with the map of target's migrate_receive."""
    name_of = named(pool, target)

    def run(session: XenAPI.Session) -> MigrationCheck:
        x = session.xenapi
        vm_rec = x.VM.get_record(vm)
        vm_name = vm_rec.get("name_label") or vm
        topo = topology(pool, session, vm_rec)
        there = target._call(
            f"reading host {target._name_of(host)}",
            lambda s: cross_plan(x, vm_rec, s.xenapi, host, disk_srs, network, target.config.name, name_of),
        )
        own = own_problems(vm_rec, vm_name, host, there.host_rec, there.metrics, topo, name_of)
        # the SRs and networks are the maps' business, said by cross_plan
        problems = [p for p in own if p[0] not in ("VM_REQUIRES_SR", "VM_REQUIRES_NET")] + there.problems
        codes = {c for c, _ in problems}
        if not codes & {"VM_BAD_POWER_STATE", *NETWORK_CODES}:
            try:
                dest = receive_migration(target, host, there.network)
            except BackendError as exc:
                problems.append((exc.code, exc.message))
            else:
                pool.connector.keep_secret(dest["session_id"])
                try:
                    x.VM.assert_can_migrate(vm, dest, True, vdi_map(there.moves), there.vifs, {}, {})
                except XenAPI.Failure as exc:
                    pool.connector.remember(session)
                    code, params = pool.errors.parts(exc)
                    problems = merge_xapi_verdict(problems, code, params, vm_name, there.host_name, name_of)
                finally:  # a pre-check per host and VM: none may leave a session behind
                    target.connector.logout_handle(dest["session_id"])
        return _verdict(vm, host, problems, there.moves, name_of, rate_mib_s)

    return pool._call(f"checking a move of VM {vm} to pool {target.config.name}", run)
