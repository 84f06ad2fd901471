"""The reply to the call that starts a migration is lost (issue 17, defect 2): poolctl never
sends that call twice, finds the migration XAPI runs and follows it to its true end; when XAPI
never got the call, it says nothing moved. Through the fault proxy, `poolctl migrate` as a
subprocess."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import XenAPI

from poolctl.errors import ExitCode
from poolctl.sim.xapi import Simulator
from tests.support import fault_proxy as fp
from tests.support.cli import config_file, run

pytestmark = pytest.mark.timeout(120)

PASSWORD = "sim-secret-42"
START = "Async.VM.pool_migrate"


@pytest.fixture
def sim() -> Iterator[object]:
    simulator = Simulator.from_scenario("lab", password=PASSWORD, migration_seconds=3.0)
    with simulator.serve(host="127.0.0.1", port=0) as server:
        yield server


def env_for(tmp_path, url: str) -> dict[str, str]:
    text = f'[[pool]]\nname = "lab"\nbackend = "xen"\nurl = "{url}"\nusername = "root"\npassword = "{PASSWORD}"\n'
    return {"POOLCTL_CONFIG": str(config_file(tmp_path, text)), "XDG_STATE_HOME": str(tmp_path / "state")}


def resident(url: str, vm: str) -> str:
    s = XenAPI.Session(url)
    s.xenapi.login_with_password("root", PASSWORD, "1.0", "test")
    try:
        (ref,) = s.xenapi.VM.get_by_name_label(vm)
        return s.xenapi.host.get_name_label(s.xenapi.VM.get_resident_on(ref))
    finally:
        s.xenapi.session.logout()


def audit(tmp_path) -> list[dict]:
    path = tmp_path / "state" / "poolctl" / "migrations.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_lost_start_reply_is_followed_to_the_true_end(sim, tmp_path):
    with fp.FaultProxy(sim.url) as proxy:
        proxy.on(START, fp.DROP_REPLY, times=1)  # XAPI starts the move; poolctl never hears back
        proc = run("migrate", "web-01", "xcp-lab-2", "--ping", "", env=env_for(tmp_path, proxy.url), timeout=60)
        assert proxy.seen.count(START) == 1, proxy.seen.calls  # never sent twice
    assert proc.returncode == ExitCode.OK, proc.stdout + proc.stderr
    assert "Migration complete" in proc.stdout and "web-01 now runs on xcp-lab-2" in proc.stdout
    assert "reply to the start of the migration of web-01 was lost" in proc.stderr
    assert all(line.startswith("poolctl: warning: ") for line in proc.stderr.splitlines()), proc.stderr
    assert resident(sim.url, "web-01") == "xcp-lab-2"
    (rec,) = audit(tmp_path)
    assert rec["result"] == "success" and rec["now_on"] == "xcp-lab-2"


def test_a_start_xapi_never_got_says_nothing_moved(sim, tmp_path):
    with fp.FaultProxy(sim.url) as proxy:
        proxy.on(START, fp.DROP_REPLY, times=1, forward=False)  # the call never reaches XAPI
        proc = run("migrate", "web-01", "xcp-lab-2", "--ping", "", env=env_for(tmp_path, proxy.url), timeout=60)
        assert proxy.seen.count(START) == 1, proxy.seen.calls
    assert proc.returncode == ExitCode.FAILED, proc.stdout + proc.stderr
    assert "XAPI runs no migration of it: nothing moved" in proc.stdout
    assert "web-01 still runs on xcp-lab-1" in proc.stdout
    assert resident(sim.url, "web-01") == "xcp-lab-1"
    (rec,) = audit(tmp_path)
    assert rec["result"] == "failed" and rec["now_on"] == "xcp-lab-1"
