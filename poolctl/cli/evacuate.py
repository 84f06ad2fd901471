"""`poolctl evacuate HOST`: empty a host for maintenance, every VM pinged while it moves.

Plans first (a destination per running VM from the backend's pre-checks and its own evacuation
verdict; with ``--network NET`` every pre-check and move is over that migration network) and
prints the plan; a VM that cannot leave refuses the whole evacuation before anything
is touched. Then the host is disabled in maintenance mode (with the VMs it is about to lose, for a
later ``host enable --restore``), the moves run through the batch runner, and the host stays
disabled whatever happened: the admin decides when it takes VMs again.
"""

from __future__ import annotations

import shlex
import sys
import uuid
from collections.abc import Sequence
from typing import Literal, TextIO

from poolctl.audit import EvacuationRecord
from poolctl.backends.base import BackendError
from poolctl.cli.batch_run import PlanRun, RunSettings, now, print_plan, print_refusal, write_record
from poolctl.cli.find import find_host, host_in, only_pool
from poolctl.cli.migrate_storage import find_sr
from poolctl.cli.migrate_target import migration_network, over_words
from poolctl.cli.pools import Loaded, loaded_pools
from poolctl.config import PoolConfig
from poolctl.errors import ExitCode, Failure, describe
from poolctl.evacuation_lock import HostBusy, host_lock
from poolctl.migration.many import plan_evacuation
from poolctl.migration.planner import Plan, evacuees
from poolctl.migration.storage_plan import plan_evacuation_to_sr
from poolctl.model import Host, Network, StorageRepository
from poolctl.safe_text import quoted, shown, shown_line


def run_evacuate(
    pools: Sequence[PoolConfig],
    *,
    host: str,
    to: Sequence[str] = (),
    settings: RunSettings,
    dry_run: bool = False,
    pool: str | None = None,
    sr: str | None = None,
    storage_rate: float = 100.0,
    network: str | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    pools = only_pool(pools, pool)
    with loaded_pools(pools, err) as (loaded, code):
        lp, source = find_host(loaded, pools, host, code)
        targets = [host_in(lp, key) for key in dict.fromkeys(to)]
        if any(t.ref == source.ref for t in targets):
            raise Failure(f"--to {shown(source.name)}: that is the host being evacuated", ExitCode.USAGE)
        if not lp.backend.capabilities.host_maintenance:
            raise Failure(f"the {lp.config.backend} backend cannot disable a host", ExitCode.REFUSED)
        copy_to: StorageRepository | None = None
        if sr is not None:
            if not lp.backend.capabilities.storage_motion:
                raise Failure(
                    f"pool {shown(lp.config.name)}: the {lp.config.backend} backend cannot copy disks (--sr)",
                    ExitCode.REFUSED,
                )
            copy_to = find_sr(lp.inventory, sr, lp.config.name)
        over = migration_network(lp, network)
        evacuation = Evacuation(lp, source, targets, settings, out, err, copy_to, storage_rate, over)
        if dry_run:
            return evacuation.plan_only()
        try:
            with host_lock(lp.config.name, source.uuid or source.ref, source.name, "poolctl evacuate"):
                return evacuation.run()
        except HostBusy as exc:
            raise Failure(str(exc), ExitCode.REFUSED) from None


class Evacuation:
    def __init__(
        self,
        pool: Loaded,
        source: Host,
        targets: Sequence[Host],
        settings: RunSettings,
        out: TextIO,
        err: TextIO,
        copy_to: StorageRepository | None = None,
        storage_rate: float = 100.0,
        network: Network | None = None,
    ) -> None:
        self.pool, self.source, self.targets, self.settings = pool, source, targets, settings
        self.out, self.err = out, err
        self.copy_to, self.storage_rate = copy_to, storage_rate  # --sr: local disks copied there
        self.network = network  # --network: every move's traffic, checked before anything moves
        self.asked = now()

    def _plan(self, verb: str) -> Plan:
        """The plan, printed (an empty one when the host runs no VMs)."""
        inv, backend, h = self.pool.inventory, self.pool.backend, self.source
        vms = evacuees(inv.vms, h.ref)
        to = {t.ref for t in self.targets} or None
        where = f" to {', '.join(shown(t.name) for t in self.targets)}" if self.targets else ""
        where += over_words(self.network)
        print(
            f"{verb} {shown(h.name)} ({shown(self.pool.config.name)}){where}: {_count(len(vms))}",
            file=self.out,
            flush=True,
        )
        if not vms:
            return Plan(())
        net = self.network.ref if self.network is not None else None
        try:
            if self.copy_to is not None:
                plan = plan_evacuation_to_sr(
                    backend,
                    inv.vms,
                    inv.hosts,
                    inv.srs,
                    h.ref,
                    self.copy_to.ref,
                    self.storage_rate,
                    sorted(to) if to else None,
                    network=net,
                )
            else:
                plan = plan_evacuation(backend, inv.vms, inv.hosts, h.ref, sorted(to) if to else None, network=net)
        except BackendError as exc:
            raise Failure(
                f"planning the evacuation of {shown(h.name)} failed: {describe(exc)}", ExitCode.FAILED
            ) from None
        print_plan(plan, self.out)
        for p in plan.moves:
            for line in p.copies:
                print(f"  copy: {shown(p.vm.name)}: {shown_line(line)}", file=self.out)
        return plan

    def _refused(self, plan: Plan) -> int:
        print_refusal(plan, self.err)
        local = plan.needs_storage_motion
        if local:
            print(
                f"poolctl: {', '.join(shown(n) for n in local)}: disks on storage no other host sees; "
                "--sr SR copies them to SR (storage motion) while the VMs move",
                file=self.err,
            )
        over = plan.refused_over_network
        if over and self.network is not None:
            print(
                f"poolctl: {', '.join(shown(n) for n in over)}: a host cannot receive a migration over network "
                f"{quoted(self.network.name)} (--network): give it an address on that network, or choose another "
                "(without --network each move takes the destination's management network)",
                file=self.err,
            )
        print(f"poolctl: {shown(self.source.name)} was left as it is (not disabled)", file=self.err)
        return ExitCode.REFUSED

    def plan_only(self) -> int:
        plan = self._plan("Plan to evacuate")
        if not plan.ok:
            return self._refused(plan)
        print(f"--dry-run: nothing moved; {shown(self.source.name)} left as it is", file=self.out)
        return ExitCode.OK

    def run(self) -> int:
        h, caps = self.source, self.pool.backend.capabilities
        plan = self._plan("Evacuating")
        if not plan.ok:
            write_record(self._record(plan, "refused", "; ".join(plan.refusal()[1:]).strip()), self.err)
            return self._refused(plan)
        if plan.moves and not caps.live_migration:
            raise Failure(
                f"cannot evacuate {shown(h.name)}: {caps.reason or 'this backend cannot live-migrate'}",
                ExitCode.REFUSED,
            )
        self._disable([p.vm.uuid for p in plan.moves])
        print(
            f"{shown(h.name)} disabled (maintenance mode): no VM starts on it or moves to it", file=self.out, flush=True
        )
        if not plan.moves:
            write_record(self._record(plan, "success", "the host ran no VMs"), self.err)
            print(f"{shown(h.name)} runs no VMs and stays disabled", file=self.out)
            return ExitCode.OK
        run = PlanRun(
            self.pool,
            plan,
            self.settings,
            out=self.out,
            err=self.err,
        )
        ran = run.run()
        moved = [line for line in ran.summary.lines if line.moved] if ran.summary is not None else []
        if ran.summary is not None and len(moved) != len(plan.moves):
            # the list is what a restore brings back: only the VMs that really left
            by_name = {p.vm.name: p.vm.uuid for p in plan.moves}
            self._disable([by_name[line.vm] for line in moved if line.vm in by_name], quiet=True)
        write_record(run.record("evacuation", h, ran, self.asked), self.err)
        if ran.summary is not None and ran.summary.ok:
            print(
                f"{shown(h.name)} is empty and stays disabled (maintenance mode); "
                f"`poolctl host enable {shown(h.name)} --restore{self._restore_network()}` brings the VMs back",
                file=self.out,
            )
        elif ran.summary is not None:
            left = shown(ran.summary.left_behind())
            print(f"{shown(h.name)} stays disabled (maintenance mode); {left}", file=self.out)
        return ran.code

    def _restore_network(self) -> str:
        """The way back over the network the VMs left by, as the admin would type it."""
        return f" --network {shlex.quote(shown(self.network.name))}" if self.network is not None else ""

    def _disable(self, evacuated: list[str], *, quiet: bool = False) -> None:
        # A host still in maintenance from an earlier evacuation (one that failed half-way) keeps
        # that one's list too: a restore brings back everything that left it.
        earlier = self.source.evacuated if self.source.maintenance else ()
        moved = list(dict.fromkeys([*earlier, *evacuated]))
        try:
            self.pool.backend.disable_host(self.source.ref, maintenance=True, evacuated=moved)
        except BackendError as exc:
            if quiet:
                print(
                    f"poolctl: warning: recording the moved VMs on {shown(self.source.name)}: {describe(exc)}",
                    file=self.err,
                )
                return
            raise Failure(f"cannot disable {shown(self.source.name)}: {describe(exc)}", ExitCode.FAILED) from None

    def _record(self, plan: Plan, result: Literal["success", "refused"], reason: str) -> EvacuationRecord:
        return EvacuationRecord(
            kind="evacuation",
            id=uuid.uuid4().hex,
            time=self.asked.isoformat(timespec="seconds"),
            pool=self.pool.config.name,
            host=self.source.name,
            host_uuid=self.source.uuid,
            result=result,
            not_moved=[p.vm.name for p in plan.placements],
            batch=str(self.settings.batch),
            reason=reason,
        )


def _count(n: int) -> str:
    return f"{n} running VM{'s' if n != 1 else ''}"
