"""Contract tests: every registered backend must pass them.

Each backend's fixture module builds a real target (the XAPI simulator over HTTP,
libvirt's test driver) and yields a ``ContractTarget``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from poolctl.backends.base import Backend


@dataclass
class ContractTarget:
    backend: Backend  # connected
    running_vm: str  # ref of a running VM
    halted_vm: str  # ref of a halted VM
    # True when this target can really migrate (the simulator can; libvirt's test driver cannot)
    can_migrate: bool
    # A destination host ref for ``running_vm`` that passes the pre-checks (when can_migrate)
    good_destination: str | None = None
    extra: dict = field(default_factory=dict)


@pytest.fixture(params=["xen", "kvm"])
def target(request) -> Iterator[ContractTarget]:
    mod = importlib.import_module(f"tests.backends.contract.fixture_{request.param}")
    yield from mod.make_target()
