"""`poolctl migrate VM HOST`: the TUI's migration, printed instead of drawn.

Same controller, same pinger, same audit log as the TUI. Progress goes to stdout (a line per
phase and per 10 %, or one live line with --watch); problems go to stderr in one line each.
Ctrl-C asks the hypervisor to cancel; a second Ctrl-C stops watching (the move goes on).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TextIO, TypeVar

from poolctl.backends.base import BackendError, CancelRefused
from poolctl.cli.find import nothing_named
from poolctl.cli.migrate_storage import disk_srs as disk_srs_of
from poolctl.cli.migrate_target import Target, aim, find_network, target
from poolctl.cli.pools import Loaded, loaded_pools
from poolctl.config import PoolConfig
from poolctl.errors import ExitCode, Failure, describe
from poolctl.migration.autotune import plan_move
from poolctl.migration.compare import predicted_vs_measured
from poolctl.migration.controller import MigrationBusy, MigrationController, MigrationPlan
from poolctl.migration.cross_pool import move_options, placing
from poolctl.migration.storage import copy_rate
from poolctl.migration.tuner import TuneRequest
from poolctl.migration.words import clock, downtime_text, headline, ping_summary
from poolctl.model import VM, Host, MigrationPhase, MigrationProgress, PowerState
from poolctl.safe_text import quoted, shown, shown_line

WATCH_S = 0.25

_Named = TypeVar("_Named", VM, Host)


@dataclass(frozen=True)
class Storage:
    """--sr, --disk, --network, --dry-run and the [migration] storage_rate estimate."""

    sr: str | None = None
    disks: tuple[str, ...] = ()
    dry_run: bool = False
    rate_mib_s: float = 100.0
    network: str | None = None

    @property
    def moves_disks(self) -> bool:
        return bool(self.sr or self.disks)


@dataclass(frozen=True)
class Found:
    pool: Loaded
    vm: VM


def _match(items: Iterable[_Named], key: str) -> list[_Named]:
    return [i for i in items if key in (i.name, i.ref, getattr(i, "uuid", None))]


def _fail(err: TextIO, message: str, code: ExitCode) -> ExitCode:
    print(f"poolctl: {shown_line(message)}", file=err)
    return code


def run_migrate(
    pools: Sequence[PoolConfig],
    *,
    vm: str,
    host: str,
    pool: str | None = None,
    ping: str | None = None,
    interval: float = 0.1,
    port: int | None = None,
    watch: bool = False,
    outcome_wait: float = 600.0,
    tuning: TuneRequest | None = None,
    sr: str | None = None,
    disks: Sequence[str] = (),
    dry_run: bool = False,
    storage_rate: float = 100.0,
    network: str | None = None,
    to_pool: str | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    try:
        wanted = aim(host, to_pool, pools)
    except Failure as exc:
        return _fail(err, str(exc), exc.code)
    every = pools
    if pool is not None:
        pools = [p for p in pools if p.name == pool]
        if not pools:
            return _fail(err, f"no pool named {quoted(pool)}", ExitCode.NO_MATCH)
    searched = {p.name for p in pools}
    # the destination's pool is loaded too (not searched for the VM)
    extra = [p for p in every if p.name == wanted.pool and p.name not in searched]
    with loaded_pools([*pools, *extra], err) as (everything, code):
        loaded = [lp for lp in everything if lp.config.name in searched]
        found = [Found(p, match) for p in loaded for match in _match(p.inventory.vms, vm)]
        if not found:
            none = nothing_named("VM", vm, loaded, pools, code)
            return _fail(err, str(none), none.code) if str(none) else none.code
        if len(found) > 1:
            where = ", ".join(f"{shown(f.pool.config.name)} ({shown(f.vm.ref)})" for f in found)
            return _fail(
                err, f"{quoted(vm)} names {len(found)} VMs: {where}; use --pool, or give a uuid", ExitCode.NO_MATCH
            )
        storage = Storage(sr, tuple(disks), dry_run, storage_rate, network)
        try:
            aimed = target(found[0].pool, everything, wanted)
            return _migrate(
                found[0], aimed, ping, interval, port, watch, outcome_wait, tuning or TuneRequest(), storage, out, err
            )
        except Failure as exc:
            return _fail(err, str(exc), exc.code)


def _migrate(
    found: Found,
    aimed: Target,
    ping: str | None,
    interval: float,
    port: int | None,
    watch: bool,
    outcome_wait: float,
    request: TuneRequest,
    storage: Storage,
    out: TextIO,
    err: TextIO,
) -> ExitCode:
    vm, inv, backend, pool = found.vm, found.pool.inventory, found.pool.backend, found.pool.config
    names = {h.ref: h.name for h in inv.hosts}
    dest: Host = aimed.host
    there = aimed.pool.inventory  # the destination pool's: its SRs and networks are the maps'
    if aimed.elsewhere:
        names.update({h.ref: f"{aimed.pool.config.name}/{h.name}" for h in there.hosts})
    caps = backend.capabilities
    if not caps.live_migration:
        return _fail(
            err,
            f"cannot migrate {shown(vm.name)}: {caps.reason or 'this backend cannot live-migrate'}",
            ExitCode.REFUSED,
        )
    if vm.power_state != PowerState.RUNNING:
        return _fail(
            err,
            f"cannot migrate {shown(vm.name)}: it is {vm.power_state.value}; only a running VM can be live-migrated",
            ExitCode.REFUSED,
        )
    disk_srs: tuple[tuple[str, str], ...] = ()
    if storage.moves_disks:
        if not caps.storage_motion:
            return _fail(
                err, f"pool {quoted(pool.name)}: this backend cannot copy disks (--sr, --disk)", ExitCode.REFUSED
            )
        disk_srs = disk_srs_of(there, vm, storage.sr, storage.disks, aimed.pool.config.name)
    network: str | None = None
    if storage.network is not None:
        if not caps.migration_network:
            return _fail(
                err, f"pool {quoted(pool.name)}: this backend cannot choose the migration network", ExitCode.REFUSED
            )
        network = find_network(there, storage.network, aimed.pool.config.name).ref
    moving = move_options(
        disk_srs=disk_srs, network=network, to_pool=aimed.pool.config.name if aimed.elsewhere else None
    )
    # a disk copy is estimated at the rate the pool's last storage move measured, when there is one
    rate = copy_rate(pool.name, storage.rate_mib_s) if disk_srs else None
    try:
        check = backend.check_move(vm.ref, dest.ref, moving, rate.mib_s if rate else storage.rate_mib_s)
    except BackendError as exc:
        return _fail(err, f"pre-check of {shown(vm.name)} -> {shown(aimed.label)} failed: {exc}", ExitCode.FAILED)
    if not check.ok:
        print(f"poolctl: cannot migrate {shown(vm.name)} to {shown(aimed.label)}:", file=err)
        for problem in check.problems:
            print(f"  ✗ {shown_line(problem)}", file=err)
        if "VM_REQUIRES_SR" in check.codes and caps.storage_motion and not disk_srs:
            print("  (to copy its disks to storage the host sees: --sr SR, or --disk DEVICE=SR)", file=err)
        return ExitCode.REFUSED
    for line in check.copies:
        print(f"  copy: {shown_line(line)}", file=out)
    if check.copies and rate is not None:
        print(f"  copy rate: {rate.mib_s:g} MiB/s ({shown_line(rate.source)})", file=out)
    source = names.get(vm.host or "", vm.host or "?")
    ping_address = ping if ping is not None else (vm.ips[0] if vm.ips else None)
    tuned = plan_move(
        backend,
        vm,
        pool=pool.name,
        source=source,
        destination=dest.name,
        probe_interval_s=interval if ping_address else None,
        request=request,
    )
    if check.copy_bytes:
        tuned = tuned.with_disk_copy(check.copy_bytes, rate.mib_s if rate else storage.rate_mib_s, backend)
    for name in tuned.tuning.ignored():
        print(f"poolctl: warning: --{name} is not offered by the {pool.backend} backend; ignored", file=err)
    if storage.dry_run:
        what = ", its disks copied as above" if check.copies else ""
        print(
            f"Dry run for {shown(vm.name)} ({shown(pool.name)}): {shown(source)} → {shown(aimed.label)}{what};"
            " nothing moves",
            file=out,
        )
        for line in tuned.lines():
            print(f"  {line}", file=out)
        return ExitCode.OK
    plan = MigrationPlan(
        pool=pool.name,
        vm=vm.ref,
        vm_memory=vm.memory,
        vm_name=vm.name,
        vm_uuid=vm.uuid,
        source=vm.host or "",
        source_name=source,
        destination=dest.ref,
        destination_name=aimed.label,
        ping_address=ping_address,
        ping_interval=interval,
        ping_port=port,
        outcome_wait_s=outcome_wait,
        options=tuned.tuning.options.model_copy(update=placing(moving)),
        tuning=tuple(tuned.tuning.lines()),
        predicted=tuned.prediction.as_record(),
        disk_copies=check.copies,
        disk_copy_bytes=check.copy_bytes,
    )
    both = {pool.name: pool, aimed.pool.config.name: aimed.pool.config}.values()
    secrets = [c.password.get_secret_value() for c in both if c.password]
    controller = MigrationController(
        backend, plan, secrets=secrets, host_name=lambda ref: names.get(ref, ref) if ref else ""
    )
    try:
        controller.claim()
    except MigrationBusy as exc:
        return _fail(err, str(exc), ExitCode.REFUSED)
    worker = threading.Thread(target=controller.run, name="migration", daemon=True)
    print(f"Migrating {shown(vm.name)} ({shown(pool.name)}): {plan.route}", file=out, flush=True)
    if plan.ping_address:
        tcp = f", TCP port {port} where ICMP is not permitted" if port else ""
        print(f"  ping {shown(plan.ping_address)} every {interval:g} s{tcp}", file=out, flush=True)
    for line in tuned.lines():
        print(f"  {line}", file=out, flush=True)
    worker.start()
    interrupted = _follow(controller, worker, watch, out, err)
    if interrupted == 2:
        words = _abandoned_words(controller)
        controller.abandon(f"poolctl migrate was interrupted twice: {words}")
        print(f"poolctl: stopped watching: {words}", file=err)
        return ExitCode.INTERRUPTED
    rec = controller.record
    if rec is not None and controller.refused:
        # Refused at the start (another client began moving it since the pre-check): nothing moved.
        return _fail(err, f"cannot migrate {shown(vm.name)}: {rec.error}", ExitCode.REFUSED)
    if rec is None:
        return _fail(
            err, f"following the migration of {shown(vm.name)} stopped unexpectedly; check the pool", ExitCode.FAILED
        )
    print(headline(rec), file=out)
    if rec.error:
        print(f"  {rec.result}: {shown_line(rec.error)}", file=out)
    print(ping_summary(rec), file=out)
    if controller.pinger is not None:
        print(f"  probe: {controller.pinger.method} — {shown_line(controller.pinger.method_reason)}", file=out)
    print(downtime_text(rec, pool.backend), file=out, flush=True)
    for line in predicted_vs_measured(rec):
        print(line, file=out, flush=True)
    if controller.audit_error:
        print(f"poolctl: warning: {shown_line(controller.audit_error)}", file=err)
    if rec.result == "cancelled":
        return ExitCode.CANCELLED
    if rec.result == "unknown":
        return ExitCode.UNKNOWN
    if interrupted:
        return ExitCode.INTERRUPTED
    return ExitCode.OK if rec.result == "success" else ExitCode.FAILED


def _abandoned_words(c: MigrationController) -> str:
    """What is true about a move poolctl stops watching before its end."""
    if c.cancel_sent:
        return "a cancel was sent; whether the move stopped is up to the hypervisor (see `poolctl ls`)"
    if c.handle is None:
        return "the migration was still being started and may still start (see `poolctl ls`)"
    return "the hypervisor carries on with the migration"


def _follow(c: MigrationController, worker: threading.Thread, watch: bool, out: TextIO, err: TextIO) -> int:
    """Print progress until the record exists; the number of Ctrl-Cs seen (0, 1 or 2)."""
    interrupts = 0
    last_key: tuple[MigrationPhase, int, str] | None = None
    told_cancel_error = False
    # Event.wait, not Thread.join: a Ctrl-C inside join() can leave is_alive() wrongly False.
    while not c.finished.is_set() and worker.is_alive():
        try:
            if c.cancel_error and not told_cancel_error:
                told_cancel_error = True
                print(
                    f"poolctl: cannot cancel: {shown_line(c.cancel_error)}; waiting for the end", file=err, flush=True
                )
            c.finished.wait(WATCH_S)
            if watch:
                out.write("\r" + _live_line(c) + "\x1b[K")
                out.flush()
            else:
                p = c.progress
                key = (p.phase, int((p.fraction or 0) * 10), p.message)
                if key != last_key:
                    last_key = key
                    pct = f" {round(100 * p.fraction):3d}%" if p.fraction is not None else ""
                    print(f"  {clock(c.elapsed_s()):>5}  {p.phase.value}{pct}{_note(p)}", file=out, flush=True)
        except KeyboardInterrupt:
            interrupts += 1
            if interrupts >= 2 and (c.ended or c.progress.phase.terminal):
                interrupts = 1  # the hypervisor said the move is over (a cancel took): the record is a second away
                continue
            if interrupts >= 2:
                return 2
            print("\npoolctl: Ctrl-C: cancelling the migration…", file=err, flush=True)
            try:
                if not c.cancel():
                    print(
                        "poolctl: the migration is still being started: the cancel goes out as soon as the "
                        "hypervisor has it (Ctrl-C again to stop watching)",
                        file=err,
                        flush=True,
                    )
            except CancelRefused as exc:
                print(
                    f"poolctl: cannot cancel: {shown_line(exc)}; waiting for the end (Ctrl-C again to stop watching)",
                    file=err,
                    flush=True,
                )
            except BackendError as exc:
                print(f"poolctl: cancel failed: {describe(exc)}", file=err, flush=True)
    if watch:
        out.write("\r" + _live_line(c) + "\x1b[K\n")
        out.flush()
    return interrupts


def _note(p: MigrationProgress) -> str:
    """A backend's note on a running move (post-copy, a setting it could not apply); a failure's
    words come with the outcome instead."""
    return f"  ({shown_line(p.message)})" if p.message and not p.phase.terminal else ""


def _live_line(c: MigrationController) -> str:
    p = c.progress
    parts = [f"{clock(c.elapsed_s())}", p.phase.value + _note(p)]
    if p.fraction is not None:
        parts.append(f"{round(100 * p.fraction)}%")
    eta = c.eta_s()
    if eta is not None:
        parts.append(f"ETA {clock(eta)}")
    stats = c.ping_stats()
    if stats is not None:
        last = f"{stats.last_rtt_ms:.2f} ms" if stats.last_rtt_ms is not None else "–"
        parts.append(
            f"| ping {shown(stats.address)}: sent {stats.sent} lost {stats.lost} "
            f"gap {stats.longest_gap_s:.1f} s last {last}"
        )
    elif c.ping_error:
        parts.append(f"| no ping: {shown_line(c.ping_error)}")
    return "  ".join(parts)
