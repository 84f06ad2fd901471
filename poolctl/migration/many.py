"""Planning and recording many moves, the same for the CLI and the TUI: an evacuation's plan (the
backend's pre-checks of every VM against every candidate host, then the hypervisor's own verdict),
a plan onto one host (a bulk move, a restore), the concurrency rule a ``--batch`` value names, and
the audit record of the whole batch (each move has its own from its controller)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Literal

from poolctl.audit import EvacuationRecord
from poolctl.backends.base import Backend
from poolctl.migration.batch_summary import Summary
from poolctl.migration.concurrency import AutoRule, ConcurrencyRule, FixedRule
from poolctl.migration.cross_pool import move_options
from poolctl.migration.planner import Checks, Plan, evacuees, plan_moves, with_blockers
from poolctl.model import VM, Host, MigrationCheck

Batch = int | Literal["auto"]
Kind = Literal["evacuation", "bulk move", "restore"]
PRECHECK_VMS = 4  # VMs pre-checked at once (each against every candidate host in parallel)


def rule_for(batch: Batch) -> ConcurrencyRule:
    return AutoRule() if batch == "auto" else FixedRule(int(batch))


def check_hosts(
    backend: Backend, vm: str, hosts: Iterable[str], *, workers: int = 8, network: str | None = None
) -> dict[str, MigrationCheck | BaseException]:
    """The backend's pre-checks of ``vm`` against each host, in parallel threads; with ``network``
    (a ref) of the move over that network, as it will be sent (``MigrationOptions.network``)."""
    hosts = list(hosts)
    if not hosts:
        return {}

    def check(host: str) -> MigrationCheck:
        if network is None:
            return backend.check_migration(vm, host)
        return backend.check_move(vm, host, move_options(network=network), 0.0)

    with ThreadPoolExecutor(max_workers=min(workers, len(hosts)), thread_name_prefix="precheck") as ex:
        futures = {h: ex.submit(check, h) for h in hosts}
    out: dict[str, MigrationCheck | BaseException] = {}
    for host, fut in futures.items():
        err = fut.exception()
        out[host] = err if err is not None else fut.result()
    return out


def precheck(backend: Backend, vms: Sequence[VM], hosts: Sequence[str], network: str | None = None) -> Checks:
    """The backend's pre-check of every (VM, host) pair, a few VMs at a time (over ``network``)."""
    if not vms or not hosts:
        return {vm.ref: {} for vm in vms}
    with ThreadPoolExecutor(max_workers=min(PRECHECK_VMS, len(vms)), thread_name_prefix="plan") as ex:
        futures = {vm.ref: ex.submit(check_hosts, backend, vm.ref, hosts, network=network) for vm in vms}
    return {ref: fut.result() for ref, fut in futures.items()}


def destinations(hosts: Sequence[Host], host: str, allowed: set[str] | None) -> list[str]:
    """The hosts an evacuation of ``host`` may fill: up, taking VMs, and among ``allowed`` if given."""
    return [h.ref for h in hosts if h.ref != host and h.enabled and h.live and (allowed is None or h.ref in allowed)]


def plan_evacuation(
    backend: Backend,
    vms: Sequence[VM],
    hosts: Sequence[Host],
    host: str,
    to: Sequence[str] | None = None,
    network: str | None = None,
) -> Plan:
    """Where each running VM of ``host`` goes (onto ``to`` only, when given; each move over
    ``network`` when given): the per-host pre-checks, then the hypervisor's own verdict
    (``BackendError`` when it cannot be had)."""
    leaving = evacuees(vms, host)
    if not leaving:
        return Plan(())
    allowed = set(to) if to else None
    candidates = destinations(hosts, host, allowed)
    blockers = backend.evacuation_blockers(host)
    checks = precheck(backend, leaving, candidates, network)
    return with_blockers(plan_moves(leaving, hosts, checks, to=allowed, network=network), blockers)


def plan_onto(
    backend: Backend, vms: Sequence[VM], hosts: Sequence[Host], host: str, network: str | None = None
) -> Plan:
    """Every one of ``vms`` onto ``host`` (a bulk move, a restore), over ``network`` when given."""
    return plan_moves(vms, hosts, precheck(backend, vms, [host], network), to=[host], network=network)


def batch_record(
    kind: Kind,
    pool: str,
    host: Host,
    summary: Summary | None,
    *,
    asked: datetime,
    batch: Batch,
    reason: str = "",
    unfinished: Sequence[str] | None = None,
    elapsed_s: float = 0.0,
) -> EvacuationRecord:
    """The record of a whole batch. ``summary`` None: no run reached its end — ``unfinished``
    names the VMs still moving when poolctl stopped watching; without it nothing had to move."""
    lines = summary.lines if summary is not None else ()
    gaps = [line.longest_gap_s for line in lines if line.longest_gap_s is not None]
    result: Literal["success", "failed", "cancelled", "unfinished"]
    if summary is None:
        result = "unfinished" if unfinished is not None else "success"
        reason = reason or ("stopped watching" if unfinished is not None else "the host ran no VMs")
    else:
        result = "cancelled" if summary.cancelled else "success" if summary.ok else "failed"
        reason = reason or summary.stop_reason or ""
    return EvacuationRecord(
        kind=kind,
        id=uuid.uuid4().hex,
        time=asked.isoformat(timespec="seconds"),
        pool=pool,
        host=host.name,
        host_uuid=host.uuid,
        result=result,
        moved=[line.vm for line in lines if line.moved],
        not_moved=[line.vm for line in lines if not line.moved] if summary is not None else list(unfinished or ()),
        duration_s=round(summary.seconds if summary is not None else elapsed_s, 3),
        batch=str(batch),
        levels=[d.reason for d in summary.levels] if summary is not None else [],
        most_at_once=summary.most_at_once if summary is not None else 0,
        ping_lost=sum(line.lost for line in lines),
        ping_longest_gap_s=max(gaps) if gaps else None,
        reason=reason,
    )
