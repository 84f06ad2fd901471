"""poolctl as it is used: in a terminal at the end of an SSH connection. A real OpenSSH server
on loopback (tests/support/sshd.py: its own host key, key authentication), ``ssh -tt`` in a
pseudo-terminal running this checkout's ``poolctl --demo`` on the far side, keys typed, the
window resized mid-migration (SIGWINCH travels through ssh to the remote poolctl), and the
connection dropped mid-migration: the move goes on in the (simulated, in-process) hypervisor,
poolctl follows it to its end, the audit log says how it ended, and nothing is left running."""

from __future__ import annotations

import json
import re
import shlex
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from poolctl.tui.migrations.hangup import REASON
from tests.support.sshd import Sshd
from tests.support.terminal import Terminal, processes_with, wait_none_with

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def ssh_server(tmp_path, monkeypatch) -> Iterator[Sshd]:
    for var in ("SSH_AUTH_SOCK", "SSH_ASKPASS", "DISPLAY"):
        monkeypatch.delenv(var, raising=False)
    server = Sshd(tmp_path / "sshd", daemon=None)  # no libvirt behind it: a login shell is all
    server.start()
    try:
        yield server
    finally:
        server.stop()


def remote_poolctl(server: Sshd, home: Path, *args: str, rows: int = 40, cols: int = 150) -> Terminal:
    """``ssh -tt root@127.0.0.1 poolctl …`` in a pseudo-terminal; the remote side runs this
    checkout with the test's Python, its state (the audit log) under ``home``."""
    home.mkdir(parents=True, exist_ok=True)
    remote_env = {
        "HOME": str(home),
        "POOLCTL_STATE_DIR": str(home / "state"),
        "PYTHONPATH": str(REPO),
        "LANG": "C.UTF-8",
    }
    assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in remote_env.items())
    command = f"cd {shlex.quote(str(home))} && exec env {assignments} {shlex.quote(sys.executable)} -m poolctl"
    argv = [
        "/usr/bin/ssh",
        "-F", str(server.ssh_config),
        "-i", str(server.client_key),
        "-p", str(server.port),
        "-o", "ServerAliveInterval=1",
        "-tt",
        f"root@{server.address}",
        " ".join([command, *map(shlex.quote, args)]),
    ]  # fmt: skip
    env = {"PATH": "/usr/bin:/bin", "TERM": "xterm-256color", "HOME": str(home), "LANG": "C.UTF-8"}
    return Terminal(argv, env, rows=rows, cols=cols)


def audit(home: Path) -> list[dict]:
    path = home / "state" / "migrations.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def start_migration(term: Terminal, vm: str) -> None:
    term.expect(vm, timeout=30)  # the demo pool loaded
    mark = term.mark()
    term.send(f"/{vm}\r")
    # its disks are read after the first paint; until then the dialog is refused ("try again")
    term.expect("xvda", since=mark, timeout=30)
    mark = term.mark()
    term.send("m")
    term.expect(f"Migrate {vm}", since=mark)
    term.expect(re.compile(rb"xcp-lab-2.{0,200}(ok|OK|\xe2\x9c\x93)"), since=mark)  # its pre-check done
    mark = term.mark()
    term.send("\r")
    term.expect("copying memory", since=mark)


def test_a_dropped_ssh_connection_mid_migration_leaves_the_move_to_end_and_says_how(ssh_server, tmp_path):
    home = tmp_path / "admin"
    marker = str(home)
    term = remote_poolctl(ssh_server, home, "--demo", rows=40, cols=150)
    try:
        start_migration(term, "web-01")
        assert processes_with(marker), "the remote poolctl is not running?"

        # the window grows mid-migration: the remote poolctl redraws for 50 rows
        assert not re.search(rb"\x1b\[5\d;1H", term.since())
        mark = term.mark()
        term.resize(50, 150)
        term.expect(re.compile(rb"\x1b\[50;1H"), since=mark, timeout=10)

        term.kill(signal.SIGKILL)  # the connection drops: the client dies, sshd hangs up the session
        term.wait(5)
        # poolctl follows the move without a terminal, writes how it ended, then quits (its
        # in-process simulator with it); before, the hang-up killed it and the log had no line
        wait_none_with(marker, timeout=40)
    finally:
        term.close()
    (record,) = audit(home)
    assert record["vm"] == "web-01" and record["result"] == "success", record
    assert record["source"] == "xcp-lab-1" and record["now_on"] == "xcp-lab-2", record


def test_a_dropped_ssh_connection_mid_evacuation_ends_its_running_move_and_starts_no_other(ssh_server, tmp_path):
    home = tmp_path / "admin"
    marker = str(home)
    term = remote_poolctl(ssh_server, home, "--demo", rows=40, cols=150)
    try:
        term.expect("web-01", timeout=30)  # the demo pool loaded; the pool tree has the focus
        mark = term.mark()
        term.send("\x1b[B\x1b[B\x1b[B")  # down three times: the third host, xcp-lab-3
        term.expect("127.0.1.3", since=mark)  # its details
        mark = term.mark()
        term.send("e")
        term.expect("Evacuate", since=mark)
        term.expect("→ xcp-lab-", since=mark)  # the plan: db-02 and build-01 move away
        mark = term.mark()
        term.send("\r")  # Evacuate (the focused button); "auto" starts one move first
        term.expect(re.compile(rb"moving +\d+%"), since=mark)
        term.kill(signal.SIGKILL)  # the connection drops mid-move
        term.wait(5)
        wait_none_with(marker, timeout=60)  # the running move followed to its end, then poolctl quit
    finally:
        term.close()
    rows = audit(home)
    moves = [r for r in rows if "kind" not in r]
    (batch,) = [r for r in rows if r.get("kind") == "evacuation"]
    assert [(m["result"], m["source"]) for m in moves] == [("success", "xcp-lab-3")], rows
    assert batch["moved"] == [moves[0]["vm"]] and len(batch["not_moved"]) == 1, batch
    assert batch["reason"] == REASON and batch["host"] == "xcp-lab-3", batch


def test_keys_over_ssh_filter_and_quit_leave_nothing_running(ssh_server, tmp_path):
    home = tmp_path / "admin"
    term = remote_poolctl(ssh_server, home, "--demo", rows=40, cols=150)
    try:
        term.expect("web-01", timeout=30)
        mark = term.mark()
        term.send("/db-01\r")
        term.expect("db-01", since=mark)
        term.send("q")
        status = term.wait(15)
    finally:
        term.close()
    assert status == 0, f"ssh ended with status {status}: {term.since()[-500:]!r}"
    wait_none_with(str(home), timeout=10)
    assert audit(home) == []
