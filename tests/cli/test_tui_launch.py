"""`poolctl` and `poolctl --demo` start the real TUI in a real pseudo-terminal and quit cleanly."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from poolctl.sim.xapi import Simulator
from tests.support.cli import config_file

pytestmark = pytest.mark.timeout(120)

ANSI = re.compile(rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>78]|\x1b\][^\x07]*\x07")


class Terminal:
    """`python -m poolctl ARGS` on a 140x45 pty; the screen text is collected with escapes removed."""

    def __init__(self, *args: str, env: dict[str, str] | None = None):
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 45, 140, 0, 0))
        full_env = {k: v for k, v in os.environ.items() if k not in ("POOLCTL_CONFIG", "NO_COLOR")}
        full_env.update(TERM="xterm-256color", **(env or {}))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "poolctl", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=full_env,
            start_new_session=True,
            close_fds=True,
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
        )
        os.close(slave)
        self.raw = bytearray()

    @property
    def text(self) -> str:
        return ANSI.sub(b"", bytes(self.raw)).decode(errors="replace")

    def read_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self.master], [], [], min(left, 0.1))
            if ready:
                try:
                    data = os.read(self.master, 65536)
                except OSError:  # EIO: the child has gone
                    return
                if not data:
                    return
                self.raw += data

    def wait_for(self, *needles: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.read_for(0.2)
            if all(n in self.text for n in needles):
                return
            if self.proc.poll() is not None:
                break
        raise AssertionError(f"never saw {needles}; screen so far: {self.text[-1500:]!r}")

    def quit(self, key: bytes = b"q", timeout: float = 20) -> int:
        os.write(self.master, key)
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self.read_for(0.2)
        assert self.proc.poll() is not None, f"still running after {key!r}: {self.text[-800:]!r}"
        return self.proc.returncode

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        os.close(self.master)


@pytest.fixture
def terminal():
    started: list[Terminal] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Terminal:
        term = Terminal(*args, env=env)
        started.append(term)
        return term

    yield start
    for term in started:
        term.close()


def test_demo_opens_the_tui_without_a_config(terminal, tmp_path):
    term = terminal("--demo", env={"XDG_CONFIG_HOME": str(tmp_path)})
    term.wait_for("xcp-lab-1", "kvm-demo")
    assert term.quit() == 0
    assert "Traceback" not in term.text


@pytest.fixture(scope="module")
def server():
    sim = Simulator.from_scenario("lab", password="tui-secret")
    srv = sim.serve(host="127.0.0.1", port=0)
    yield srv
    sim.close()


def pool_config(tmp_path: Path, url: str, extra: str = "", mode: int = 0o600) -> Path:
    text = f'{extra}[[pool]]\nname = "lab"\nbackend = "xen"\nurl = "{url}"\npassword = "tui-secret"\n'
    return config_file(tmp_path, text, mode=mode)


def test_config_pools_open_in_the_tui_with_the_keymap(terminal, tmp_path, server):
    # The remap proves the [keys] table reaches the app: "x" quits and "q" no longer does.
    path = pool_config(tmp_path, server.url, extra='[keys]\n"app.quit" = "x"\n\n')
    term = terminal("--config", str(path))
    term.wait_for("xcp-lab-2")
    os.write(term.master, b"q")
    term.read_for(1.0)
    assert term.proc.poll() is None, "q still quits after remapping app.quit"
    assert term.quit(b"x") == 0
    assert "tui-secret" not in term.text


def test_config_warning_is_shown_in_the_tui(terminal, tmp_path, server):
    path = pool_config(tmp_path, server.url, mode=0o644)
    term = terminal("--config", str(path))
    term.wait_for("xcp-lab-1", "chmod")
    assert term.quit() == 0


def test_config_migration_table_reaches_the_migrate_dialog(terminal, tmp_path, server):
    path = pool_config(tmp_path, server.url, extra="[migration]\nping_interval = 0.25\nping_port = 2222\n\n")
    term = terminal("--config", str(path))
    term.wait_for("xcp-lab-2", "app-01")
    os.write(term.master, b"\t")  # to the VM list: its cursor is on app-01, running
    term.read_for(0.5)
    os.write(term.master, b"m")
    term.wait_for("Migrate app-01", "every ms", "TCP port")
    screen = re.sub(r"\s+", " ", term.text)
    assert re.search(r"every ms 250 +TCP port 2222 ", screen), screen[-1500:]
    os.write(term.master, b"\x1b")
    term.read_for(0.5)
    assert term.quit() == 0
