"""Fixtures: a lab simulator served on loopback, and logged-in sessions of the real XenAPI SDK."""

from __future__ import annotations

import pytest
import XenAPI

from poolctl.backends.xapisim import Simulator

PASSWORD = "s3cret-test"


@pytest.fixture
def sim() -> Simulator:
    return Simulator.from_scenario("lab", password=PASSWORD, migration_seconds=1.5)


@pytest.fixture
def server(sim):
    srv = sim.serve(host="127.0.0.1", port=0)
    yield srv
    srv.close()


@pytest.fixture
def session(server):
    s = XenAPI.Session(server.url)
    s.login_with_password("root", PASSWORD, "2.21", "poolctl-tests")
    yield s
    try:
        s.xenapi.session.logout()
    except Exception:
        pass  # the server may already be gone


@pytest.fixture
def api(session):
    return session.xenapi


def vm_named(api, name: str) -> str:
    refs = api.VM.get_by_name_label(name)
    assert len(refs) == 1, refs
    return refs[0]


def host_named(api, name: str) -> str:
    refs = api.host.get_by_name_label(name)
    assert len(refs) == 1, refs
    return refs[0]
