"""A migrate of a VM another client is already moving (issue 17, defect 8): refused before
anything is tried, exit 5 as documented; the audit log gets no false "failed"."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import XenAPI

from poolctl.errors import ExitCode
from poolctl.sim.xapi import Simulator
from tests.support import fault_proxy as fp
from tests.support.cli import config_file, run

pytestmark = pytest.mark.timeout(120)

PASSWORD = "sim-secret-42"


@pytest.fixture
def sim() -> Iterator[tuple[Simulator, object]]:
    simulator = Simulator.from_scenario("lab", password=PASSWORD, migration_seconds=6.0)
    with simulator.serve(host="127.0.0.1", port=0) as server:
        yield simulator, server


def other_client(url: str) -> XenAPI.Session:
    session = XenAPI.Session(url)
    session.xenapi.login_with_password("root", PASSWORD, "1.0", "another-client")
    return session


def start_other_move(session: XenAPI.Session) -> str:
    x = session.xenapi
    (vm,) = x.VM.get_by_name_label("web-01")
    (host,) = x.host.get_by_name_label("xcp-lab-2")
    task = x.Async.VM.pool_migrate(vm, host, {"live": "true"})
    deadline = time.monotonic() + 5
    while not x.VM.get_current_operations(vm) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert x.VM.get_current_operations(vm), "the other client's move did not show in current_operations"
    return task


def env_for(tmp_path, url: str) -> dict[str, str]:
    text = f'[[pool]]\nname = "lab"\nbackend = "xen"\nurl = "{url}"\nusername = "root"\npassword = "{PASSWORD}"\n'
    return {"POOLCTL_CONFIG": str(config_file(tmp_path, text)), "XDG_STATE_HOME": str(tmp_path / "state")}


def audit_lines(tmp_path) -> list[str]:
    path = tmp_path / "state" / "poolctl" / "migrations.jsonl"
    return path.read_text().splitlines() if path.exists() else []


def test_a_vm_another_client_is_moving_is_refused_by_the_pre_check(sim, tmp_path):
    _simulator, server = sim
    session = other_client(server.url)
    start_other_move(session)
    proc = run("migrate", "web-01", "xcp-lab-2", "--ping", "", env=env_for(tmp_path, server.url))
    assert proc.returncode == ExitCode.REFUSED, proc.stdout + proc.stderr
    assert "web-01 is busy: XAPI is running pool_migrate on it" in proc.stderr
    assert "Migration failed" not in proc.stdout
    assert audit_lines(tmp_path) == []  # nothing was tried: nothing to record as failed


def test_a_move_started_between_pre_check_and_start_is_refused_not_failed(sim, tmp_path):
    _simulator, server = sim
    session = other_client(server.url)
    with fp.FaultProxy(server.url) as proxy:
        # the other client starts its move just before poolctl's start reaches XAPI
        proxy.on("Async.VM.pool_migrate", before=lambda request: start_other_move(session), times=1)
        proc = run("migrate", "web-01", "xcp-lab-2", "--ping", "", env=env_for(tmp_path, proxy.url))
    assert proc.returncode == ExitCode.REFUSED, proc.stdout + proc.stderr
    assert "cannot migrate web-01: web-01 is busy with another operation (pool_migrate)" in proc.stderr
    assert "Migration failed" not in proc.stdout
    # XAPI refused the start: the log says so (not a move that "failed" somewhere)
    (line,) = audit_lines(tmp_path)
    assert '"result":"refused"' in line.replace(" ", "") and "busy with another operation" in line
