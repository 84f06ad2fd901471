"""Driving poolctl's KVM backend in the lab: a connected backend, the pinger, a migration run."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from poolctl.backends import load
from poolctl.backends.base import Backend, MigrationHandle
from poolctl.model import Inventory, MigrationProgress, MigrationResult
from poolctl.ping.pinger import Pinger
from poolctl.ping.stats import PingStats

from .lab import Lab

INTERVAL = 0.1  # the pinger's probe interval, as in the TUI's migration panel


@contextmanager
def kvm_backend(lab: Lab, **config) -> Iterator[Backend]:
    backend = load("kvm")(lab.pool_config(**config))
    backend.connect()
    try:
        yield backend
    finally:
        backend.close()


@dataclass
class Refs:
    vm: str
    hosts: dict[str, str]  # host name (hostA) -> backend ref

    def name_of(self, ref: str | None) -> str | None:
        return next((n for n, r in self.hosts.items() if r == ref), None)


def refs(inv: Inventory, vm_name: str) -> Refs:
    vms = [v for v in inv.vms if v.name == vm_name]
    assert len(vms) == 1, f"expected one VM {vm_name!r} in the backend's inventory, got {vms}"
    return Refs(vms[0].ref, {h.name: h.ref for h in inv.hosts})


def vm_host(backend: Backend, vm_name: str) -> str | None:
    """Where the backend's fresh inventory says the VM runs (a host name)."""
    inv = backend.inventory()
    r = refs(inv, vm_name)
    vm = next(v for v in inv.vms if v.ref == r.vm)
    return r.name_of(vm.host)


@contextmanager
def pinging(lab: Lab, interval: float = INTERVAL) -> Iterator[Pinger]:
    """poolctl's Pinger probing the guest from the client namespace.

    The Pinger opens its socket in its constructor: building it in a thread that
    entered the client netns puts the socket there; it can run from any thread.
    """
    pinger = lab.in_client(lambda: Pinger(lab.guest_ip, interval=interval, timeout=1.0))
    pinger.start()
    try:
        yield pinger
    finally:
        pinger.stop()


def settle(pinger: Pinger, seconds: float) -> None:
    time.sleep(seconds)
    assert pinger.error is None, f"pinger failed: {pinger.error}"


@dataclass
class Run:
    result: MigrationResult
    updates: list[MigrationProgress] = field(default_factory=list)
    wall_s: float = 0.0
    times: list[float] = field(default_factory=list)  # when each update arrived, s after the start

    def gaps(self, phase) -> list[float]:
        """Seconds between consecutive updates in ``phase`` (how often progress moved)."""
        t = [at for at, u in zip(self.times, self.updates) if u.phase == phase]
        return [b - a for a, b in zip(t, t[1:])]


def run_migration(
    handle: MigrationHandle, timeout: float = 90, on_update: Callable[[MigrationProgress], None] | None = None
) -> Run:
    """Consume ``handle.updates()`` in a worker thread (as the TUI does); fail after ``timeout``."""
    seen: list[MigrationProgress] = []
    times: list[float] = []
    box: dict[str, BaseException] = {}

    def body() -> None:
        try:
            for p in handle.updates():
                times.append(time.monotonic() - t0)
                seen.append(p)
                if on_update is not None:
                    on_update(p)
        except BaseException as exc:  # re-raised in the test's thread
            box["error"] = exc

    t0 = time.monotonic()
    t = threading.Thread(target=body, name="migration-updates", daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        try:
            handle.cancel()
        finally:
            t.join(30)
        raise AssertionError(
            f"migration {handle.source} -> {handle.destination} still running "
            f"after {timeout} s; last update {seen[-1:]}"
        )
    if "error" in box:
        raise box["error"]
    result = handle.result
    assert result is not None, "updates() ended but the handle has no result"
    assert seen and seen[-1].phase.terminal, f"last update is not terminal: {seen[-1:]}"
    return Run(result, seen, time.monotonic() - t0, times)


def figures(label: str, run: Run, stats: PingStats) -> str:
    r = run.result
    return (
        f"{label}: {r.outcome} in {r.duration_s:.2f} s (wall {run.wall_s:.2f} s), "
        f"downtime {r.downtime_ms} ms; ping sent {stats.sent} lost {stats.lost} "
        f"longest gap {stats.longest_gap_s:.3f} s; phases "
        f"{' > '.join(u.phase.value for u in run.updates)}" + (f"\n  error: {r.error}" if r.error else "")
    )


MAX_CRASHES = 2  # moves per test after which the guest's kernel crashed (QEMU 7.2 TCG), redone
T = TypeVar("T")


class GuestCrashed(AssertionError):
    """The move succeeded, then the guest went silent: its kernel crashed (QEMU 7.2 TCG, README)."""

    def __init__(self, message: str, oops: str):
        super().__init__(message)
        self.oops = oops


def crash_after_move(lab: Lab, marks: dict[str, int], wait_s: float = 3.0) -> str:
    """The oops the guest logged after ``marks`` (``Lab.serial_marks``), waited for a little:
    a silent guest's kernel may still be printing it."""
    deadline = time.monotonic() + wait_s
    while not (oops := lab.guest_crash(since=marks)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return oops


def redo_after_crash(lab: Lab, move: Callable[[], T], crashes: list[str], start_on: str, dirty_mib: int = 0) -> T:
    """``move()``; if the guest crashed after it, boot a fresh one on ``start_on`` and move again,
    at most ``MAX_CRASHES`` times per test (``crashes`` counts them): the crash is QEMU's, not
    the move's, and each one is said."""
    while True:
        try:
            return move()
        except GuestCrashed as crash:
            crashes.append(str(crash).splitlines()[0])
            print(f"\n{crashes[-1]}; moving a fresh guest again")
            if len(crashes) > MAX_CRASHES:
                raise
            lab.stop_guest(lab.guest_name)
            lab.ensure_guest(on="hostA", dirty_mib=dirty_mib)
            if start_on != "hostA":
                lab.migrate_raw("hostA", start_on)
