"""A long outage mid-migration (issue 17, defect 3): poolctl says the outcome is unknown while
it is, keeps asking, and reports where the VM really is once it can; when it never can, it
says "unknown" (exit 7), never a location it has not read. The audit log has "unknown" first,
completed by the true outcome under the same id. Through the fault proxy (connections reset)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest

from poolctl.audit import AuditLog
from poolctl.errors import ExitCode
from poolctl.sim.xapi import Simulator
from tests.support import fault_proxy as fp
from tests.support.cli import config_file, run

pytestmark = pytest.mark.timeout(120)

PASSWORD = "sim-secret-42"
START = "Async.VM.pool_migrate"


@pytest.fixture
def server() -> Iterator[object]:
    # a 10 s move: the 8 s outage starts early in it and outlasts poolctl's 5 s of quiet, on a busy machine too
    simulator = Simulator.from_scenario("lab", password=PASSWORD, migration_seconds=10.0)
    with simulator.serve(host="127.0.0.1", port=0) as srv:
        yield srv


def env_for(tmp_path, url: str, outcome_wait: float) -> dict[str, str]:
    text = (
        f'[[pool]]\nname = "lab"\nbackend = "xen"\nurl = "{url}"\nusername = "root"\npassword = "{PASSWORD}"\n'
        f"\n[migration]\noutcome_wait = {outcome_wait}\n"
    )
    return {"POOLCTL_CONFIG": str(config_file(tmp_path, text)), "XDG_STATE_HOME": str(tmp_path / "state")}


def outage_after_start(proxy: fp.FaultProxy, seconds: float) -> None:
    def cut() -> None:
        deadline = time.monotonic() + 20
        while proxy.seen.count("task.get_record") < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        proxy.refuse(seconds)

    threading.Thread(target=cut, daemon=True).start()


def log_lines(tmp_path) -> list[dict]:
    path = tmp_path / "state" / "poolctl" / "migrations.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_after_a_long_outage_the_true_outcome_is_reported(server, tmp_path):
    with fp.FaultProxy(server.url) as proxy:
        outage_after_start(proxy, 12.0)  # longer than poolctl stays quiet; the move ends meanwhile
        proc = run("migrate", "web-01", "xcp-lab-2", "--ping", "", env=env_for(tmp_path, proxy.url, 60), timeout=90)
    assert proc.returncode == ExitCode.OK, proc.stdout + proc.stderr
    assert "outcome unknown: lost contact with the pool at" in proc.stdout
    assert "Migration complete" in proc.stdout and "web-01 now runs on xcp-lab-2" in proc.stdout
    assert "not running on any host" not in proc.stdout
    first, last = log_lines(tmp_path)
    assert first["result"] == "unknown" and first["now_on"] == ""
    assert last["id"] == first["id"] and last["result"] == "success" and last["now_on"] == "xcp-lab-2"
    records, _ = AuditLog(tmp_path / "state" / "poolctl" / "migrations.jsonl").read()
    assert [r.result for r in records] == ["success"]  # the completed line is the truth


def test_when_contact_never_comes_back_the_outcome_is_unknown_not_invented(server, tmp_path):
    with fp.FaultProxy(server.url) as proxy:
        outage_after_start(proxy, 60.0)
        proc = run("migrate", "web-01", "xcp-lab-2", "--ping", "", env=env_for(tmp_path, proxy.url, 3), timeout=90)
    assert proc.returncode == ExitCode.UNKNOWN, proc.stdout + proc.stderr
    assert "Outcome unknown after" in proc.stdout and "poolctl could not read where web-01 runs" in proc.stdout
    assert "not running on any host" not in proc.stdout and "Migration failed" not in proc.stdout
    (rec,) = log_lines(tmp_path)
    assert rec["result"] == "unknown" and rec["now_on"] == ""
    assert "how the migration of web-01 ended is not known" in rec["error"]


def test_after_xapi_restarts_mid_move_the_vm_is_reported_where_it_is(tmp_path, monkeypatch):
    # A restarted XAPI has the same objects (its database persists) but no task and no session:
    # two simulators built from the same seed stand for before and after.
    import random
    import uuid

    from poolctl.sim.xapi import db as simdb

    def seeded() -> None:
        rng = random.Random(17)
        monkeypatch.setattr(simdb, "_fast_uuid4", lambda: str(uuid.UUID(int=rng.getrandbits(128), version=4)))

    seeded()
    before = Simulator.from_scenario("lab", password=PASSWORD, migration_seconds=10.0)
    seeded()
    after = Simulator.from_scenario("lab", password=PASSWORD, migration_seconds=10.0)
    assert before.db.refs("VM") == after.db.refs("VM")
    with before.serve(host="127.0.0.1", port=0) as old, after.serve(host="127.0.0.1", port=0) as new:
        with fp.FaultProxy(old.url) as proxy:

            def restart() -> None:
                deadline = time.monotonic() + 20
                while proxy.seen.count("task.get_record") < 2 and time.monotonic() < deadline:
                    time.sleep(0.02)
                proxy.target = ("127.0.0.1", int(new.url.rsplit(":", 1)[1]))
                proxy.refuse(2.0)  # the restart: connections reset, then the new XAPI answers

            threading.Thread(target=restart, daemon=True).start()
            proc = run("migrate", "web-01", "xcp-lab-2", "--ping", "", env=env_for(tmp_path, proxy.url, 60), timeout=90)
    assert proc.returncode == ExitCode.FAILED, proc.stdout + proc.stderr
    assert (
        "the pool no longer has the migration's task (XAPI restarted?); web-01 still runs on its source" in proc.stdout
    )
    assert "web-01 still runs on xcp-lab-1" in proc.stdout
    assert "not running on any host" not in proc.stdout
    (rec,) = log_lines(tmp_path)
    assert rec["result"] == "failed" and rec["now_on"] == "xcp-lab-1"
