"""TUI tests drive the real app against the XAPI simulator through the real Xen backend.

The simulator's seeded "lab" scenario is the test data. Its UUIDs come from uuid4, so the
``lab`` fixture seeds them (the snapshot of a VM's details shows its UUID).
"""

from __future__ import annotations

import asyncio
import errno
import inspect
import random
import time
import uuid
from collections.abc import Iterator

import pytest

from poolctl.sim.xapi import db as simdb
from poolctl.sim.xapi.simulator import Simulator
from tests.support.tui import Lab

# Snapshot tests serve on this fixed port: the connection error they show names it.
SNAPSHOT_PORT = 28443


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests on a fresh event loop (Textual's pilot is async)."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    asyncio.run(pyfuncitem.obj(**args))
    return True


def _seeded_uuids(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(1234)
    monkeypatch.setattr(simdb, "new_uuid", lambda: str(uuid.UUID(int=rng.getrandbits(128), version=4)))


def _start_lab(port: int = 0) -> tuple[Simulator, str]:
    sim = Simulator.from_scenario("lab", password="demo", migration_seconds=8.0)
    # The snapshot port is fixed: another test run on this machine may hold it for a while.
    deadline = time.monotonic() + 60
    while True:
        try:
            server = sim.serve(host="127.0.0.1", port=port)
            return sim, server.url
        except OSError as exc:
            if port == 0 or exc.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                sim.close()
                raise
            time.sleep(0.5)


@pytest.fixture
def lab(monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    _seeded_uuids(monkeypatch)
    sim, url = _start_lab()
    try:
        yield Lab(sim, url)
    finally:
        sim.close()


@pytest.fixture
def snapshot_lab(monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    _seeded_uuids(monkeypatch)
    sim, url = _start_lab(SNAPSHOT_PORT)
    try:
        yield Lab(sim, url)
    finally:
        sim.close()


@pytest.fixture
def state_dir(tmp_path, monkeypatch):
    """poolctl's state (the audit log the dialogs' estimates read) in the test's own folder."""
    monkeypatch.setenv("POOLCTL_STATE_DIR", str(tmp_path))
    return tmp_path
