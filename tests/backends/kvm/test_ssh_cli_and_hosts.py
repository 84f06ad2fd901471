"""Through the real sshd: `poolctl ls` says each failure in one line with its exit code, a pool's
hosts open independently (a host that never answers does not hold the others), and no ssh child
outlives a closed pool or an exiting process."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import time
from pathlib import Path

import pytest

from poolctl.backends.kvm import KvmBackend
from poolctl.config import pool_config
from poolctl.errors import ExitCode
from poolctl.model import ConnectionStatus
from tests.support.cli import config_file, one_line_error, run
from tests.support.fault_proxy import FaultProxy
from tests.support.kvm_helpers import wait_for
from tests.support.sshd import ssh_children, wait_no_ssh_children

pytestmark = pytest.mark.timeout(90)


def _ls(tmp_path: Path, uris: list[str], extra: str = "") -> subprocess.CompletedProcess[str]:
    listed = ", ".join(f'"{u}"' for u in uris)
    cfg = config_file(tmp_path, f'[[pool]]\nname = "rack"\nbackend = "kvm"\nuris = [{listed}]\n{extra}')
    return run("--config", str(cfg), "ls", "vms", timeout=60)


def test_ls_over_ssh_lists_the_vm(sshd, tmp_path):
    proc = _ls(tmp_path, [sshd.uri()])
    assert proc.returncode == 0, proc.stderr
    assert "test" in proc.stdout and proc.stderr == ""


def test_ls_exits_3_for_a_refused_login_and_1_for_an_untrusted_key(sshd, tmp_path):
    proc = _ls(tmp_path, [sshd.uri(user="nosuchuser")])
    assert proc.returncode == ExitCode.AUTH
    line = one_line_error(proc)
    assert "pool 'rack'" in line and "refused the login" in line and "nosuchuser" in line

    sshd.forget()
    proc = _ls(tmp_path, [sshd.uri()])
    assert proc.returncode == ExitCode.FAILED
    line = one_line_error(proc)
    assert "not known yet" in line and "ssh-keyscan" in line


def test_ls_serves_the_good_host_and_warns_about_the_refused_one(sshd, tmp_path):
    proc = _ls(tmp_path, [sshd.uri(), sshd.uri(user="nosuchuser")])
    assert proc.returncode == ExitCode.OK, proc.stderr
    assert "test" in proc.stdout
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("poolctl: warning: pool 'rack' (kvm): host 127.0.0.1:") and "refused the login" in line


def test_ls_with_a_host_that_never_answers_ends_within_the_timeout(sshd, tmp_path):
    with FaultProxy(("127.0.0.1", 9), http=False, stalled=True) as gate:
        held = sshd.uri().replace(f":{sshd.port}/", f":{gate.address.split(':')[1]}/")
        started = time.monotonic()
        proc = _ls(tmp_path, [held], "connect_timeout_s = 2\n")
        took = time.monotonic() - started
    assert proc.returncode == ExitCode.FAILED
    assert "did not answer within 2 s" in one_line_error(proc)
    assert took < 15, took


def test_a_held_host_opens_beside_the_others_and_arrives_as_unreachable(sshd):
    with FaultProxy(("127.0.0.1", 9), http=False, stalled=True) as gate:
        held = sshd.uri().replace(f":{sshd.port}/", f":{gate.address.split(':')[1]}/")
        backend = KvmBackend(
            pool_config({"name": "rack", "backend": "kvm", "uris": [held, sshd.uri()], "connect_timeout_s": 3})
        )
        try:
            backend.connect()
            first = backend.first_inventory()
            slow = next(hc for hc in backend.hosts if hc.uri == held)
            # ordering, not a stopwatch: the answering host was read while the held one still opened
            assert slow.opening and gate.accepted >= 1
            assert [v.name for v in first.vms] == ["test"]
            assert sorted(h.live for h in first.hosts) == [False, True]
            states: queue.Queue = queue.Queue()
            backend.watch(lambda _c: None, states.put)
            lost = wait_for(
                states, lambda s: s.status == ConnectionStatus.LOST and s.host == slow.ref, "the held host LOST", 20
            )
            assert "did not answer within 3 s" in lost.message and lost.retry_in_s is not None
        finally:
            backend.close()
    wait_no_ssh_children()


def test_closing_a_pool_mid_open_ends_its_ssh_child_at_once(sshd):
    with FaultProxy(("127.0.0.1", 9), http=False, stalled=True) as gate:
        held = sshd.uri().replace(f":{sshd.port}/", f":{gate.address.split(':')[1]}/")
        backend = KvmBackend(
            pool_config({"name": "rack", "backend": "kvm", "uris": [held, sshd.uri()], "connect_timeout_s": 60})
        )
        backend.connect()
        gate.wait_accepted()
        assert any(c.endswith(" ssh") for c in ssh_children())  # the held host's ssh, waiting for a banner
        started = time.monotonic()
        backend.close()
        wait_no_ssh_children()
        assert time.monotonic() - started < 5


def test_a_process_exiting_mid_open_takes_its_ssh_child_along(sshd, tmp_path):
    with FaultProxy(("127.0.0.1", 9), http=False, stalled=True) as gate:
        port = gate.address.split(":")[1]
        held = sshd.uri().replace(f":{sshd.port}/", f":{port}/")
        script = (
            "import threading, sys\n"
            "from poolctl.backends.kvm import KvmBackend\n"
            "from poolctl.config import pool_config\n"
            f"cfg = {{'name': 'p', 'backend': 'kvm', 'uris': [{held!r}], 'connect_timeout_s': 60}}\n"
            "b = KvmBackend(pool_config(cfg))\n"
            "threading.Thread(target=b.connect, daemon=True).start()\n"
            "import time; time.sleep(1.5)\n"
            "sys.exit(0)\n"
        )
        proc = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, env={**os.environ}
        )
        assert proc.returncode == 0, proc.stderr
        assert gate.accepted >= 1
        deadline = time.monotonic() + 5
        while (left := _ssh_to_port(port)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not left, f"ssh to port {port} outlived its process: {left}"


def _ssh_to_port(port: str) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"ssh") and port.encode() in argv:
            out.append(int(entry))
    return out
