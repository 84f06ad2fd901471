"""The Xen backend against the XAPI simulator's lab pool, served on loopback (real SDK, real HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from poolctl.backends.xen import XenBackend
from poolctl.config import PoolConfig, pool_config
from poolctl.model import Inventory
from poolctl.sim.xapi import Simulator
from tests.backends.contract.conftest import ContractTarget

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


def make_target(migration_seconds: float = 1.0) -> Iterator[ContractTarget]:
    with lab(migration_seconds) as (sim, server), connected(server.url) as backend:
        inv = backend.inventory()
        yield ContractTarget(
            backend=backend,
            running_vm=by_name(inv, "vm", "web-01"),
            halted_vm=by_name(inv, "vm", "test-01"),
            can_migrate=True,
            good_destination=by_name(inv, "host", "xcp-lab-2"),
            extra={"sim": sim, "server": server},
        )
