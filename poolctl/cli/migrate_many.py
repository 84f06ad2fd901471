"""`poolctl migrate VM VM… HOST`: several VMs to one destination, like `mv`, through the batch
machinery (each VM pinged on its own address, ``--batch N|auto`` at once). One VM goes through
``poolctl.cli.migrate`` instead, unchanged.

Every VM is pre-checked first; one that cannot go refuses the whole move before anything starts.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from poolctl.cli.batch_run import PlanRun, RunSettings, now, print_plan, print_refusal, write_record
from poolctl.cli.find import host_in, nothing_named, only_pool
from poolctl.cli.pools import Loaded, loaded_pools
from poolctl.config import PoolConfig
from poolctl.errors import ExitCode, Failure
from poolctl.migration.many import plan_onto
from poolctl.model import VM
from poolctl.safe_text import shown


def run_migrate_many(
    pools: Sequence[PoolConfig],
    *,
    vms: Sequence[str],
    host: str,
    pool: str | None = None,
    settings: RunSettings,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    pools = only_pool(pools, pool)
    with loaded_pools(pools, err) as (loaded, code):
        found = [_find(loaded, pools, key, code) for key in dict.fromkeys(vms)]
        in_pools = {lp.config.name for lp, _ in found}
        if len(in_pools) > 1:
            raise Failure(
                f"the VMs are in several pools ({', '.join(sorted(in_pools))}); one move takes VMs of one pool",
                ExitCode.NO_MATCH,
            )
        lp = found[0][0]
        chosen = list({vm.ref: vm for _, vm in found}.values())
        dest = host_in(lp, host)
        caps = lp.backend.capabilities
        if not caps.live_migration:
            why = caps.reason or "this backend cannot live-migrate"
            raise Failure(f"cannot migrate {', '.join(v.name for v in chosen)}: {why}", ExitCode.REFUSED)
        plan = plan_onto(lp.backend, chosen, lp.inventory.hosts, dest.ref)
        print(f"Migrating {len(chosen)} VMs ({shown(lp.config.name)}) to {shown(dest.name)}:", file=out)
        print_plan(plan, out)
        if not plan.ok:
            print_refusal(plan, err)
            return ExitCode.REFUSED
        asked = now()
        run = PlanRun(lp, plan, settings, out=out, err=err)
        ran = run.run()
        write_record(run.record("bulk move", dest, ran, asked), err)
        return ran.code


def _find(loaded: Sequence[Loaded], pools: Sequence[PoolConfig], key: str, code: ExitCode) -> tuple[Loaded, VM]:
    found = [(p, vm) for p in loaded for vm in p.inventory.vms if key in (vm.name, vm.ref, vm.uuid)]
    if not found:
        raise nothing_named("VM", key, loaded, pools, code)
    if len(found) > 1:
        where = ", ".join(f"{p.config.name} ({vm.ref})" for p, vm in found)
        raise Failure(f"{key!r} names {len(found)} VMs: {where}; use --pool, or give a uuid", ExitCode.NO_MATCH)
    return found[0]
