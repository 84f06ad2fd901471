"""Ctrl-C while a migration is still being started (issue 17, defect 4): the cancel is queued
and sent as soon as XAPI has the task; the VM stays; every message is true, and a second
Ctrl-C after the cancel took does not claim the move carries on. The start's reply is held
back by the fault proxy; `poolctl migrate` runs as a subprocess and gets real SIGINTs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from poolctl.errors import ExitCode
from poolctl.sim.xapi import Simulator
from tests.support import fault_proxy as fp
from tests.support.cli import config_file

pytestmark = pytest.mark.timeout(120)

PASSWORD = "sim-secret-42"
START = "Async.VM.pool_migrate"


@pytest.fixture
def sim() -> Iterator[tuple[Simulator, object]]:
    simulator = Simulator.from_scenario("lab", password=PASSWORD, migration_seconds=8.0)
    with simulator.serve(host="127.0.0.1", port=0) as server:
        yield simulator, server


def start_migrate(tmp_path, url: str, ping: str = "") -> subprocess.Popen[str]:
    text = f'[[pool]]\nname = "lab"\nbackend = "xen"\nurl = "{url}"\nusername = "root"\npassword = "{PASSWORD}"\n'
    env = {"POOLCTL_CONFIG": str(config_file(tmp_path, text)), "XDG_STATE_HOME": str(tmp_path / "state")}
    return subprocess.Popen(
        [sys.executable, "-m", "poolctl", "migrate", "web-01", "xcp-lab-2", "--ping", ping],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**{k: v for k, v in os.environ.items() if k != "POOLCTL_CONFIG"}, **env},
    )


def wait_until(cond, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_ctrl_c_while_starting_queues_the_cancel_and_the_vm_stays(sim, tmp_path):
    simulator, server = sim
    release = threading.Event()
    with fp.FaultProxy(server.url) as proxy:
        proxy.on(START, before=lambda request: release.wait(10), times=1)  # the start hangs in flight
        proc = start_migrate(tmp_path, proxy.url)
        wait_until(lambda: proxy.seen.calls and any(m == "VM.get_record" for m, _ in proxy.seen.calls), "the pre-check")
        time.sleep(1.0)  # poolctl is now waiting on the start's reply
        proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
        release.set()
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == ExitCode.CANCELLED, out + err
    assert "still being started: the cancel goes out as soon as the hypervisor has it" in err
    assert "try again in a moment" not in err and "carries on" not in err
    assert "Migration cancelled" in out and "web-01 still runs on xcp-lab-1" in out
    (rec,) = [
        json.loads(line) for line in (tmp_path / "state" / "poolctl" / "migrations.jsonl").read_text().splitlines()
    ]
    assert rec["result"] == "cancelled" and rec["now_on"] == "xcp-lab-1"


def test_a_second_ctrl_c_after_the_cancel_took_is_no_abandon(sim, tmp_path):
    simulator, server = sim
    with fp.FaultProxy(server.url) as proxy:
        proc = start_migrate(tmp_path, proxy.url, ping="127.0.0.1")  # the ping's tail keeps it a second longer
        wait_until(lambda: proxy.seen.count("task.get_record") >= 3, "the move to be followed")
        proc.send_signal(signal.SIGINT)
        # poolctl destroys the task once it has read its end: the cancel took, poolctl knows it
        wait_until(lambda: proxy.seen.count("task.destroy") >= 1, "poolctl to see the move cancelled")
        time.sleep(0.2)
        assert proc.poll() is None, "ended before the second Ctrl-C: the ping tail should hold it"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == ExitCode.CANCELLED, out + err
    assert "carries on" not in err and "stopped watching" not in err
    assert "Migration cancelled" in out and "web-01 still runs on xcp-lab-1" in out
