"""Contract tests: every registered backend must pass them.

The backends are those of the ``poolctl.backends`` entry-point group, so a new backend is
tested (or fails, naming what is missing) as soon as it is registered. Each one's fixture
module, ``fixture_<name>.py`` here, builds a real target (the XAPI simulator over HTTP,
libvirt's test driver) and yields a ``ContractTarget`` from ``make_target()``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from poolctl import backends
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


@pytest.fixture(params=sorted(backends.available()))
def target(request: pytest.FixtureRequest) -> Iterator[ContractTarget]:
    name = request.param
    module = f"{__package__}.fixture_{name}"
    try:
        fixture = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        fixture = None
    if fixture is None:
        pytest.fail(
            f"backend {name!r} is registered (entry-point group {backends.GROUP!r}) but has no contract "
            f"fixture: add tests/backends/contract/fixture_{name}.py with make_target() yielding a ContractTarget",
            pytrace=False,
        )
    yield from fixture.make_target()
