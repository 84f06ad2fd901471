"""The Xen backend against the XAPI simulator's lab pool, served on loopback (real SDK, real HTTP)."""

from __future__ import annotations

from collections.abc import Iterator

from tests.backends.contract.conftest import ContractTarget
from tests.support.xen import by_name, connected, lab


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
