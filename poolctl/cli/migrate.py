"""`poolctl migrate VM HOST`: the TUI's migration, printed instead of drawn.

Same controller, same pinger, same audit log as the TUI. Progress goes to stdout (a line per
phase and per 10 %, or one live line with --watch); problems go to stderr in one line each.
Ctrl-C asks the hypervisor to cancel; a second Ctrl-C stops watching (the move goes on).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TextIO

from poolctl import backends
from poolctl.backends.base import AuthenticationError, Backend, BackendError, CancelRefused
from poolctl.config import ConfigError, PoolConfig
from poolctl.migration.controller import (
    MigrationBusy,
    MigrationController,
    MigrationPlan,
    clock,
    describe,
    downtime_text,
    headline,
    ping_summary,
)
from poolctl.model import VM, Host, Inventory, PowerState

EXIT_OK = 0
EXIT_FAILED = 1  # the migration failed (the VM stays where the hypervisor left it), or a pool failed
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_NO_MATCH = 4  # no such pool, VM or host (or the VM name is in several pools)
EXIT_REFUSED = 5  # the pre-checks refuse the destination, or the VM cannot move now
EXIT_CANCELLED = 6  # cancelled (Ctrl-C while the move could still be cancelled)
EXIT_INTERRUPTED = 130  # Ctrl-C too late to cancel, or a second Ctrl-C: the move went on


WATCH_S = 0.25


class Found:
    def __init__(self, pool: PoolConfig, backend: Backend, inventory: Inventory, vm: VM):
        self.pool, self.backend, self.inventory, self.vm = pool, backend, inventory, vm


def _match(items, key: str):
    return [i for i in items if key in (i.name, i.ref, getattr(i, "uuid", None))]


def _connect(pool: PoolConfig) -> tuple[Backend, Inventory]:
    backend = backends.load(pool.backend)(pool)
    try:
        backend.connect()
        return backend, backend.inventory()
    except BaseException:
        _close(backend)
        raise


def _close(backend: Backend) -> None:
    try:
        backend.close()
    except Exception:
        pass


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
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    out, err = out or sys.stdout, err or sys.stderr

    def fail(message: str, code: int) -> int:
        print(f"poolctl: {message}", file=err)
        return code

    if pool is not None:
        pools = [p for p in pools if p.name == pool]
        if not pools:
            return fail(f"no pool named {pool!r}", EXIT_NO_MATCH)
    connected: list[Found] = []
    code = EXIT_OK
    backends_open: list[Backend] = []
    try:
        with ThreadPoolExecutor(max_workers=min(8, max(1, len(pools)))) as ex:
            futures = [(p, ex.submit(_connect, p)) for p in pools]
            for p, fut in futures:
                try:
                    backend, inv = fut.result()
                except AuthenticationError as exc:
                    print(f"poolctl: pool {p.name!r}: {exc}", file=err)
                    code = EXIT_AUTH
                    continue
                except (BackendError, ConfigError, OSError) as exc:
                    print(f"poolctl: pool {p.name!r}: {exc}", file=err)
                    code = code or EXIT_FAILED
                    continue
                backends_open.append(backend)
                for match in _match(inv.vms, vm):
                    connected.append(Found(p, backend, inv, match))
        if not connected:
            searched = ", ".join(p.name for p in pools) or "any pool"
            return fail(
                f"no VM named {vm!r} in {searched}" + (" (that could be reached)" if code else ""),
                code or EXIT_NO_MATCH,
            )
        if len(connected) > 1:
            where = ", ".join(f"{f.pool.name} ({f.vm.ref})" for f in connected)
            return fail(f"{vm!r} names {len(connected)} VMs: {where}; use --pool, or give a uuid", EXIT_NO_MATCH)
        return _migrate(connected[0], host, ping, interval, port, watch, out, err, fail)
    finally:
        for backend in backends_open:
            _close(backend)


def _migrate(
    found: Found,
    host_key: str,
    ping: str | None,
    interval: float,
    port: int | None,
    watch: bool,
    out: TextIO,
    err: TextIO,
    fail,
) -> int:
    vm, inv, backend, pool = found.vm, found.inventory, found.backend, found.pool
    hosts = _match(inv.hosts, host_key)
    names = {h.ref: h.name for h in inv.hosts}
    if len(hosts) != 1:
        known = ", ".join(sorted(h.name for h in inv.hosts))
        return fail(
            f"pool {pool.name!r} has {'no' if not hosts else 'several'} host(s) named {host_key!r}; hosts: {known}",
            EXIT_NO_MATCH,
        )
    dest: Host = hosts[0]
    caps = backend.capabilities
    if not caps.live_migration:
        return fail(f"cannot migrate {vm.name}: {caps.reason or 'this backend cannot live-migrate'}", EXIT_REFUSED)
    if vm.power_state != PowerState.RUNNING:
        return fail(
            f"cannot migrate {vm.name}: it is {vm.power_state.value}; only a running VM can be live-migrated",
            EXIT_REFUSED,
        )
    try:
        check = backend.check_migration(vm.ref, dest.ref)
    except BackendError as exc:
        return fail(f"pre-check of {vm.name} -> {dest.name} failed: {exc}", EXIT_FAILED)
    if not check.ok:
        print(f"poolctl: cannot migrate {vm.name} to {dest.name}:", file=err)
        for problem in check.problems:
            print(f"  ✗ {problem}", file=err)
        return EXIT_REFUSED
    source = names.get(vm.host or "", vm.host or "?")
    plan = MigrationPlan(
        pool=pool.name,
        vm=vm.ref,
        vm_name=vm.name,
        vm_uuid=vm.uuid,
        source=vm.host or "",
        source_name=source,
        destination=dest.ref,
        destination_name=dest.name,
        ping_address=ping if ping is not None else (vm.ips[0] if vm.ips else None),
        ping_interval=interval,
        ping_port=port,
    )
    secret = pool.password.get_secret_value() if pool.password else ""
    controller = MigrationController(
        backend, plan, secrets=[secret], host_name=lambda ref: names.get(ref, ref) if ref else ""
    )
    try:
        controller.claim()
    except MigrationBusy as exc:
        return fail(str(exc), EXIT_REFUSED)
    worker = threading.Thread(target=controller.run, name="migration", daemon=True)
    print(f"Migrating {vm.name} ({pool.name}): {plan.route}", file=out, flush=True)
    if plan.ping_address:
        tcp = f", TCP port {port} where ICMP is not permitted" if port else ""
        print(f"  ping {plan.ping_address} every {interval:g} s{tcp}", file=out, flush=True)
    worker.start()
    interrupted = _follow(controller, worker, watch, out, err)
    if interrupted == 2:
        controller.abandon("poolctl migrate was interrupted twice; the hypervisor carried on with the move")
        print("poolctl: stopped watching; the hypervisor carries on with the migration", file=err)
        return EXIT_INTERRUPTED
    rec = controller.record
    if rec is None:
        return fail(f"following the migration of {vm.name} stopped unexpectedly; check the pool", EXIT_FAILED)
    print(headline(rec), file=out)
    if rec.error:
        print(f"  {rec.result}: {rec.error}", file=out)
    print(ping_summary(rec), file=out)
    if controller.pinger is not None:
        print(f"  probe: {controller.pinger.method} — {controller.pinger.method_reason}", file=out)
    print(downtime_text(rec, pool.backend), file=out, flush=True)
    if controller.audit_error:
        print(f"poolctl: warning: {controller.audit_error}", file=err)
    if rec.result == "cancelled":
        return EXIT_CANCELLED
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if rec.result == "success" else EXIT_FAILED


def _follow(c: MigrationController, worker: threading.Thread, watch: bool, out: TextIO, err: TextIO) -> int:
    """Print progress until the record exists; the number of Ctrl-Cs seen (0, 1 or 2)."""
    interrupts = 0
    last_key: tuple | None = None
    # Event.wait, not Thread.join: a Ctrl-C inside join() can leave is_alive() wrongly False.
    while not c.finished.is_set() and worker.is_alive():
        try:
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
            if interrupts >= 2:
                return 2
            print("\npoolctl: Ctrl-C: cancelling the migration…", file=err, flush=True)
            try:
                c.cancel()
            except CancelRefused as exc:
                print(
                    f"poolctl: cannot cancel: {exc}; waiting for the end (Ctrl-C again to stop watching)",
                    file=err,
                    flush=True,
                )
            except BackendError as exc:
                print(f"poolctl: cancel failed: {describe(exc)}", file=err, flush=True)
    if watch:
        out.write("\r" + _live_line(c) + "\x1b[K\n")
        out.flush()
    return interrupts


def _note(p) -> str:
    """A backend's note on a running move (post-copy, a setting it could not apply); a failure's
    words come with the outcome instead."""
    return f"  ({p.message})" if p.message and not p.phase.terminal else ""


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
            f"| ping {stats.address}: sent {stats.sent} lost {stats.lost} gap {stats.longest_gap_s:.1f} s last {last}"
        )
    elif c.ping_error:
        parts.append(f"| no ping: {c.ping_error}")
    return "  ".join(parts)
