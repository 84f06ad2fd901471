"""Fixtures: a lab simulator served on loopback, and logged-in sessions of the real XenAPI SDK."""

from __future__ import annotations

import time

import pytest
import XenAPI

from poolctl.sim.xapi import Simulator

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


@pytest.fixture
def lab_factory():
    """Start labs with chosen options; all are closed at teardown."""
    servers = []

    def start(**options):
        options.setdefault("password", PASSWORD)
        sim = Simulator.from_scenario("lab", **options)
        server = sim.serve(host="127.0.0.1", port=0)
        servers.append(server)
        s = XenAPI.Session(server.url)
        s.login_with_password("root", PASSWORD, "2.21", "poolctl-tests")
        return sim, server, s.xenapi

    yield start
    for server in servers:
        server.close()


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.02, what: str = "condition"):
    """Poll `predicate` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def wait_task(api, task: str, timeout: float = 15.0) -> dict:
    wait_until(lambda: api.task.get_status(task) != "pending", timeout, what=f"task {task} to finish")
    return api.task.get_record(task)


def vm_named(api, name: str) -> str:
    refs = api.VM.get_by_name_label(name)
    assert len(refs) == 1, refs
    return refs[0]


def host_named(api, name: str) -> str:
    refs = api.host.get_by_name_label(name)
    assert len(refs) == 1, refs
    return refs[0]
