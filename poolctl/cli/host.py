"""`poolctl host disable HOST` / `poolctl host enable HOST [--restore]`.

Disable: no new VM starts on the host or moves to it; the VMs on it stay (``poolctl evacuate``
moves them). Enable: the host takes VMs again and leaves maintenance mode; with ``--restore`` the
VMs the last evacuation moved away, and that still run elsewhere, move back, each pinged, through
the same batch machinery as the evacuation (``--network NET``: over that migration network).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from poolctl.backends.base import BackendError
from poolctl.cli.batch_run import PlanRun, RunSettings, now, print_plan, write_record
from poolctl.cli.find import find_host, only_pool
from poolctl.cli.migrate_target import migration_network, over_words
from poolctl.cli.pools import Loaded, loaded_pools
from poolctl.config import PoolConfig
from poolctl.errors import ExitCode, Failure, describe
from poolctl.evacuation_lock import HostBusy, host_lock
from poolctl.migration.many import plan_onto
from poolctl.migration.planner import Plan
from poolctl.model import VM, Host, Network, PowerState
from poolctl.safe_text import shown, shown_line


def run_host(
    pools: Sequence[PoolConfig],
    *,
    action: str,
    host: str,
    pool: str | None = None,
    restore: bool = False,
    network: str | None = None,
    settings: RunSettings,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    if network is not None and not restore:
        raise Failure("--network is the network of --restore's moves: give --restore too", ExitCode.USAGE)
    pools = only_pool(pools, pool)
    with loaded_pools(pools, err) as (loaded, code):
        lp, h = find_host(loaded, pools, host, code)
        if not lp.backend.capabilities.host_maintenance:
            raise Failure(f"the {lp.config.backend} backend cannot disable or enable a host", ExitCode.REFUSED)
        if action == "disable":
            return _disable(lp, h, out)
        over = migration_network(lp, network)  # before the host is enabled: a refusal changes nothing
        try:
            # not while an evacuation of the host runs: it would take VMs while being emptied
            with host_lock(lp.config.name, h.uuid or h.ref, h.name, "poolctl host enable"):
                return _enable(lp, h, restore, settings, out, err, over)
        except HostBusy as exc:
            raise Failure(str(exc), ExitCode.REFUSED) from None


def _disable(lp: Loaded, h: Host, out: TextIO) -> int:
    try:
        lp.backend.disable_host(h.ref)
    except BackendError as exc:
        raise Failure(f"cannot disable {shown(h.name)}: {describe(exc)}", ExitCode.FAILED) from None
    running = [v for v in lp.inventory.vms if v.host == h.ref and v.power_state == PowerState.RUNNING]
    was = " (it was already disabled)" if not h.enabled else ""
    print(f"{shown(h.name)} disabled{was}: no VM starts on it or moves to it", file=out)
    if running:
        print(f"  its {len(running)} running VM(s) stay; `poolctl evacuate {shown(h.name)}` moves them away", file=out)
    return ExitCode.OK


def _enable(
    lp: Loaded,
    h: Host,
    restore: bool,
    settings: RunSettings,
    out: TextIO,
    err: TextIO,
    network: Network | None = None,
) -> int:
    try:
        moved = lp.backend.enable_host(h.ref)
    except BackendError as exc:
        raise Failure(f"cannot enable {shown(h.name)}: {describe(exc)}", ExitCode.FAILED) from None
    was = " (it was not disabled)" if h.enabled else " (maintenance mode ended)" if h.maintenance else ""
    print(f"{shown(h.name)} enabled{was}: VMs may start on it and move to it again", file=out, flush=True)
    if not restore:
        if moved:
            print(f"  the {len(moved)} VM(s) the last evacuation moved away stay where they are", file=out)
        return ExitCode.OK
    if not moved:
        print(f"  --restore: no evacuation of {shown(h.name)} is on record; nothing to bring back", file=out)
        return ExitCode.OK
    return _restore(lp, h, moved, settings, out, err, network)


def _restore(
    lp: Loaded,
    h: Host,
    moved: Sequence[str],
    settings: RunSettings,
    out: TextIO,
    err: TextIO,
    network: Network | None,
) -> int:
    try:
        inv = lp.backend.inventory()  # where the VMs run now, and the host enabled
    except BackendError as exc:
        raise Failure(
            f"reading pool {lp.config.name!r} for the restore failed: {describe(exc)}", ExitCode.FAILED
        ) from None
    by_uuid = {v.uuid: v for v in inv.vms}
    back: list[VM] = []
    for u in moved:
        vm = by_uuid.get(u)
        if vm is None:
            print(f"  not restored: VM {u} is no longer in pool {lp.config.name!r}", file=out)
        elif vm.host == h.ref:
            print(f"  not restored: {shown(vm.name)} already runs on {shown(h.name)}", file=out)
        elif vm.power_state != PowerState.RUNNING:
            print(f"  not restored: {shown(vm.name)} is {vm.power_state.value}, not running elsewhere", file=out)
        else:
            back.append(vm)
    if not back:
        return ExitCode.OK
    plan = plan_onto(lp.backend, back, inv.hosts, h.ref, network.ref if network is not None else None)
    print(f"Restoring {len(back)} VM(s) to {shown(h.name)}{over_words(network)}:", file=out)
    print_plan(plan, out)
    for p in plan.blocked:
        print(f"poolctl: {shown(p.vm.name)} cannot come back to {shown(h.name)}: {shown_line(p.why)}", file=err)
    if not plan.moves:
        return ExitCode.REFUSED
    caps = lp.backend.capabilities
    if not caps.live_migration:
        raise Failure(f"cannot restore: {caps.reason or 'this backend cannot live-migrate'}", ExitCode.REFUSED)
    asked = now()
    run = PlanRun(
        Loaded(lp.config, lp.backend, inv),
        Plan(plan.moves),
        settings,
        out=out,
        err=err,
    )
    ran = run.run()
    write_record(run.record("restore", h, ran, asked), err)
    if ran.code != ExitCode.OK:
        return ran.code
    return ExitCode.REFUSED if plan.blocked else ExitCode.OK
