"""The Xen backend's test helpers: the simulator's lab pool on loopback, a connected backend
(the real SDK over real HTTP), and waits on what its watch delivers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from poolctl.backends.xen import XenBackend
from poolctl.config import PoolConfig, pool_config
from poolctl.model import Inventory, MigrationOptions
from poolctl.sim.xapi import Simulator
from tests.support.recorder import Recorder

PASSWORD = "demo-Secret-42"
USERNAME = "root"


def config(url: str, password: str = PASSWORD, **extra) -> PoolConfig:
    return pool_config(
        {"name": "lab", "backend": "xen", "url": url, "username": USERNAME, "password": password, **extra}
    )


@contextmanager
def lab(migration_seconds: float = 1.0) -> Iterator[tuple[Simulator, object]]:
    sim = Simulator.from_scenario("lab", password=PASSWORD, migration_seconds=migration_seconds)
    with sim.serve(host="127.0.0.1", port=0) as server:
        yield sim, server


@contextmanager
def connected(url: str, **extra) -> Iterator[XenBackend]:
    backend = XenBackend(config(url, **extra))
    backend.connect()
    try:
        yield backend
    finally:
        backend.close()


def by_name(inv: Inventory, kind: str, name: str) -> str:
    table = {"host": inv.hosts, "vm": inv.vms, "sr": inv.srs, "network": inv.networks}[kind]
    refs = [o.ref for o in table if o.name == name]
    assert len(refs) == 1, f"expected one {kind} named {name!r}, found {len(refs)}"
    return refs[0]


def watching(backend):
    rec = Recorder()
    backend.watch(rec.on_change, rec.on_state)
    return rec


def wait_state(rec, status, timeout=15.0, after=0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for st in rec.states[after:]:
            if st.status == status:
                return st
        time.sleep(0.05)
    raise AssertionError(f"no {status} state within {timeout} s; saw {[s.status for s in rec.states]}")


def migrate_until(backend, vm, host, predicate):
    """Start a migration; return (handle, remaining updates iterator) once ``predicate(progress)``."""
    handle = backend.migrate(vm, host, MigrationOptions())
    updates = handle.updates()
    for progress in updates:
        assert not progress.phase.terminal, f"migration ended before the awaited point: {progress}"
        if predicate(progress):
            return handle, updates
    raise AssertionError("updates() ended without reaching the awaited point")
