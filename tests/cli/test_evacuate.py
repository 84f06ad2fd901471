"""`poolctl evacuate` end to end: a real `poolctl` process against the XAPI simulator served from
this test (real XenAPI SDK, real pinger on the VMs' loopback addresses), configured by a file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from poolctl.audit import AuditLog
from poolctl.backends.xen.maintenance import EVACUATED_MIGRATED, MAINTENANCE_MODE
from poolctl.sim.xapi import Simulator
from poolctl.sim.xapi.scenario import Scenario, parse_scenario
from tests.support.cli import config_file, run

pytestmark = pytest.mark.timeout(120)

PASSWORD = "cli-evacuate-secret-3"


def row_scenario(vms: int) -> Scenario:
    """One source host with ``vms`` small VMs on shared storage, two empty destinations."""
    return parse_scenario(
        {
            "pool": "row",
            "default_sr": "shared",
            "hosts": [
                {"name": "src", "address": "127.0.3.1", "memory_gib": 16, "master": True},
                {"name": "dst-a", "address": "127.0.3.2", "memory_gib": 16},
                {"name": "dst-b", "address": "127.0.3.3", "memory_gib": 16},
            ],
            "srs": [{"name": "shared", "type": "nfs", "shared": True, "size_gib": 500}],
            "networks": [{"name": "VM network", "bridge": "xenbr1"}],
            "vms": [
                {
                    "name": f"r{i}",
                    "host": "src",
                    "memory_gib": 1,
                    "ip": f"127.0.30.{i}",
                    "disks": [{"sr": "shared", "size_gib": 10}],
                    "networks": ["VM network"],
                }
                for i in range(1, vms + 1)
            ],
        },
        "row",
    )


def serve(tmp_path: Path, scenario: str | Scenario, seconds: float) -> Iterator[tuple[Simulator, dict[str, str]]]:
    sim = Simulator.from_scenario(scenario, password=PASSWORD, migration_seconds=seconds)
    server = sim.serve(host="127.0.0.1", port=0)
    cfg = config_file(
        tmp_path,
        f'[[pool]]\nname = "lab"\nbackend = "xen"\nurl = "{server.url}"\nusername = "root"\npassword = "{PASSWORD}"\n',
    )
    try:
        yield sim, {"POOLCTL_CONFIG": str(cfg), "POOLCTL_STATE_DIR": str(tmp_path / "state")}
    finally:
        sim.close()


@pytest.fixture
def lab(tmp_path) -> Iterator[tuple[Simulator, dict[str, str]]]:
    yield from serve(tmp_path, "lab", 1.0)


@pytest.fixture
def row(tmp_path) -> Iterator[tuple[Simulator, dict[str, str]]]:
    yield from serve(tmp_path, row_scenario(4), 2.0)


def resident(sim: Simulator, vm: str) -> str:
    return sim.db.field("host", sim.db.field("VM", sim.vm_ref(vm), "resident_on"), "name_label")


def guests(sim: Simulator, host: str) -> list[str]:
    ref = sim.host_ref(host)
    return sorted(
        sim.db.field("VM", vm, "name_label")
        for vm in sim.db.find("VM", lambda r: r["resident_on"] == ref and not r["is_control_domain"])
    )


def log_lines(env) -> list[dict]:
    return [json.loads(line) for line in (Path(env["POOLCTL_STATE_DIR"]) / "migrations.jsonl").read_text().splitlines()]


def start(env, *args: str) -> subprocess.Popen:
    base = {k: v for k, v in os.environ.items() if k != "POOLCTL_CONFIG"}
    return subprocess.Popen(
        [sys.executable, "-m", "poolctl", *args],
        env={**base, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def test_evacuate_empties_the_host_pings_every_vm_and_leaves_it_in_maintenance(lab):
    sim, env = lab
    moving = guests(sim, "xcp-lab-3")
    assert moving == ["build-01", "db-02"]
    proc = run("evacuate", "xcp-lab-3", "--pool", "lab", env=env, timeout=90)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("Evacuating xcp-lab-3 (lab): 2 running VMs\n")
    assert "xcp-lab-3 disabled (maintenance mode)" in out
    assert "batch: starting with 1 at a time" in out  # the concurrency chosen, and why
    lines = out.splitlines()
    for vm in moving:  # one summary line per VM, with its ping figures
        (line,) = [ln for ln in lines if ln.startswith(f"{vm} ") and " → " in ln]
        assert "  sent " in line and "  lost 0  longest gap " in line
    assert any(ln.startswith("2 of 2 VMs moved in ") and "lost 0 probes" in ln for ln in lines)
    assert "xcp-lab-3 is empty and stays disabled (maintenance mode)" in out
    assert guests(sim, "xcp-lab-3") == []
    lab3 = sim.host_ref("xcp-lab-3")
    assert sim.db.field("host", lab3, "enabled") is False
    oc = sim.db.field("host", lab3, "other_config")
    uuids = {sim.db.field("VM", sim.vm_ref(vm), "uuid") for vm in moving}
    assert oc[MAINTENANCE_MODE] == "true" and set(oc[EVACUATED_MIGRATED].split(",")) == uuids
    entries = log_lines(env)
    assert sorted(e["vm"] for e in entries if "kind" not in e) == moving  # one per VM
    (evac,) = [e for e in entries if e.get("kind") == "evacuation"]
    assert evac["host"] == "xcp-lab-3" and evac["result"] == "success" and sorted(evac["moved"]) == moving
    records, problems = AuditLog(Path(env["POOLCTL_STATE_DIR"]) / "migrations.jsonl").read()
    assert len(records) == 2 and problems == []  # the history reader skips the evacuation's line
    assert PASSWORD not in out + proc.stderr

    hosts = run("ls", "hosts", env=env)
    (row,) = [ln for ln in hosts.stdout.splitlines() if ln.startswith("xcp-lab-3")]
    assert row.split()[1] == "maintenance"

    refused = run("migrate", "web-01", "xcp-lab-3", env=env)
    assert refused.returncode == 5
    assert "xcp-lab-3 is disabled (maintenance mode): no VM may start on it or move to it" in refused.stderr
    assert resident(sim, "web-01") == "xcp-lab-1"

    back = run("host", "enable", "xcp-lab-3", "--restore", "--batch", "2", env=env, timeout=90)
    assert back.returncode == 0, back.stderr
    assert "xcp-lab-3 enabled (maintenance mode ended)" in back.stdout
    assert "Restoring 2 VM(s) to xcp-lab-3:" in back.stdout and "2 of 2 VMs moved" in back.stdout
    assert guests(sim, "xcp-lab-3") == moving
    assert sim.db.field("host", lab3, "enabled") is True
    assert MAINTENANCE_MODE not in sim.db.field("host", lab3, "other_config")
    assert [e["kind"] for e in log_lines(env) if "kind" in e] == ["evacuation", "restore"]


def test_a_vm_with_a_local_disk_refuses_the_evacuation_and_nothing_moves(lab):
    sim, env = lab
    before = guests(sim, "xcp-lab-1")
    proc = run("evacuate", "xcp-lab-1", "--pool", "lab", env=env)
    assert proc.returncode == 5, proc.stderr
    assert "cache-01" in proc.stdout and "blocked:" in proc.stdout  # the plan table
    err = proc.stderr.splitlines()
    assert err[0] == "poolctl: 1 of 4 VMs cannot leave (cache-01); nothing was moved:"
    assert err[1].startswith("  ✗ cache-01: ") and "Local storage xcp-lab-1" in err[1]
    assert err[-1] == "poolctl: xcp-lab-1 was left as it is (not disabled)"
    assert guests(sim, "xcp-lab-1") == before
    assert sim.db.field("host", sim.host_ref("xcp-lab-1"), "enabled") is True
    assert not [e for e in log_lines(env) if "kind" not in e]  # no migration started
    assert [e["result"] for e in log_lines(env)] == ["refused"]


def test_dry_run_prints_the_plan_and_touches_nothing(lab):
    sim, env = lab
    proc = run("evacuate", "xcp-lab-3", "--dry-run", env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[1].split() == ["VM", "MEMORY", "FROM", "TO"]
    assert "--dry-run: nothing moved; xcp-lab-3 left as it is" in proc.stdout
    assert guests(sim, "xcp-lab-3") == ["build-01", "db-02"]
    assert sim.db.field("host", sim.host_ref("xcp-lab-3"), "enabled") is True


def test_to_limits_the_destinations(lab):
    sim, env = lab
    proc = run("evacuate", "xcp-lab-3", "--to", "xcp-lab-1", "--dry-run", env=env)
    assert proc.returncode == 0, proc.stderr
    plan = [ln.split() for ln in proc.stdout.splitlines()[2:4]]
    assert {row[-1] for row in plan} == {"xcp-lab-1"}
    bad = run("evacuate", "xcp-lab-3", "--to", "xcp-lab-3", env=env)
    assert bad.returncode == 2 and "that is the host being evacuated" in bad.stderr


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (("evacuate", "nosuch"), 4, "no host named 'nosuch' in lab"),
        (("evacuate", "xcp-lab-3", "--pool", "other"), 4, "no pool named 'other'"),
        (("evacuate", "xcp-lab-3", "--to", "nosuch"), 4, "has no host(s) named 'nosuch'"),
        (("evacuate", "xcp-lab-3", "--batch", "0"), 2, "expected at least 1 move at once"),
        (("evacuate", "xcp-lab-3", "--batch", "many"), 2, "expected a number of moves at once, or auto"),
        (("host", "enable", "nosuch"), 4, "no host named 'nosuch' in lab"),
    ],
)
def test_bad_requests_say_why(lab, args, code, words):
    proc = run(*args, env=lab[1])
    assert proc.returncode == code, proc.stderr
    assert words in proc.stderr and "Traceback" not in proc.stderr


def test_a_failed_move_stops_new_starts_and_exits_1_with_the_host_disabled(row):
    sim, env = row
    proc = start(env, "evacuate", "src", "--batch", "1", "--interval", "0.2")
    deadline = time.monotonic() + 30
    while "pool_migrate" not in sim.db.field("VM", sim.vm_ref("r1"), "current_operations").values():
        assert time.monotonic() < deadline, "the first move never started"
        time.sleep(0.02)
    sim.set_power_state("r2", "Halted")  # the admin, at the console, before its turn
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    lines = {ln.split()[0]: ln for ln in out.splitlines() if " → " in ln and not ln.startswith(" ")}
    assert "  lost " in lines["r1"] and " failed " in lines["r2"] and "halted" in lines["r2"]
    assert "not moved: not started (the move of r2 failed)" in lines["r3"]
    assert "1 of 4 VMs moved" in out and "src stays disabled (maintenance mode); still on it: r2, r3, r4" in out
    assert "poolctl: the move of r2 failed: no more moves start" in err
    assert resident(sim, "r1") != "src" and [resident(sim, v) for v in ("r3", "r4")] == ["src", "src"]
    src = sim.host_ref("src")
    assert sim.db.field("host", src, "enabled") is False
    # what a restore would bring back: only the VM that left
    assert sim.db.field("host", src, "other_config")[EVACUATED_MIGRATED] == sim.db.field("VM", sim.vm_ref("r1"), "uuid")
    (evac,) = [e for e in log_lines(env) if e.get("kind") == "evacuation"]
    assert evac["result"] == "failed" and evac["moved"] == ["r1"] and evac["not_moved"] == ["r2", "r3", "r4"]
    # the admin deals with r2; evacuating again finishes the job and the list keeps r1
    again = run("evacuate", "src", "--batch", "2", env=env, timeout=90)
    assert again.returncode == 0, again.stderr
    assert "Evacuating src (lab): 2 running VMs" in again.stdout and guests(sim, "src") == []  # r2 is halted
    listed = set(sim.db.field("host", src, "other_config")[EVACUATED_MIGRATED].split(","))
    assert listed == {sim.db.field("VM", sim.vm_ref(v), "uuid") for v in ("r1", "r3", "r4")}


def _wait_cancellable(sim: Simulator, count: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        tasks = sim.db.find("task", lambda r: r["status"] == "pending" and "cancel" in r["allowed_operations"])
        if len(tasks) >= count and all(sim.db.field("task", t, "progress") > 0.15 for t in tasks):
            return
        assert time.monotonic() < deadline, "the moves never became cancellable"
        time.sleep(0.02)


def test_ctrl_c_cancels_the_running_moves_starts_no_more_and_exits_6(row):
    sim, env = row
    proc = start(env, "evacuate", "src", "--batch", "2")
    _wait_cancellable(sim, 2)
    time.sleep(0.6)  # poolctl sees the cancellable progress (polled every 0.5 s)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 6, err
    assert "Ctrl-C: cancelling the running moves, starting no more" in err
    assert "r1: cancel asked" in err and "r2: cancel asked" in err
    assert "0 of 4 VMs moved" in out
    assert guests(sim, "src") == ["r1", "r2", "r3", "r4"]
    assert sim.db.field("host", sim.host_ref("src"), "enabled") is False  # stays disabled


def test_a_second_evacuation_of_the_same_host_is_refused(row):
    sim, env = row
    first = start(env, "evacuate", "src", "--batch", "1")
    deadline = time.monotonic() + 30
    while "pool_migrate" not in sim.db.field("VM", sim.vm_ref("r1"), "current_operations").values():
        assert time.monotonic() < deadline, "the first evacuation never started"
        time.sleep(0.02)
    second = run("evacuate", "src", env=env)
    assert second.returncode == 5, second.stderr
    assert "src (pool 'lab') is already being evacuated or restored: poolctl evacuate (pid " in second.stderr
    enable = run("host", "enable", "src", env=env)
    assert enable.returncode == 5 and "already being evacuated" in enable.stderr
    first.send_signal(signal.SIGINT)
    first.communicate(timeout=60)
