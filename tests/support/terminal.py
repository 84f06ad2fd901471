"""A program in a pseudo-terminal, driven as a user at a terminal would: keys in, screen bytes
out, the window resized (TIOCSWINSZ on the master: the kernel sends SIGWINCH to the program),
every wait bounded. Plain ``pty``/``os``: no pexpect."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import signal
import struct
import termios
import threading
import time
from pathlib import Path

_CSI = re.compile(rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>78]")


def plain(data: bytes) -> str:
    """What the bytes put on screen, roughly: escape sequences dropped."""
    return _CSI.sub(b" ", data).decode("utf-8", "replace")


class Terminal:
    def __init__(self, argv: list[str], env: dict[str, str], *, rows: int = 40, cols: int = 150):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the pty's slave is its controlling terminal
            try:
                os.execve(argv[0], argv, env)
            finally:
                os._exit(127)
        self.resize(rows, cols)
        self.output = bytearray()
        self._lock = threading.Lock()
        self.status: int | None = None
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.fd, 65536)
            except OSError:  # EIO: every holder of the slave is gone
                return
            if not data:
                return
            with self._lock:
                self.output.extend(data)

    def mark(self) -> int:
        with self._lock:
            return len(self.output)

    def since(self, mark: int = 0) -> bytes:
        with self._lock:
            return bytes(self.output[mark:])

    def expect(self, what: str | re.Pattern[bytes], timeout: float = 20.0, since: int = 0) -> bytes:
        """Wait for ``what`` (plain text, or a pattern over the raw bytes) after ``since``."""
        deadline = time.monotonic() + timeout
        while True:
            data = self.since(since)
            found = what.search(data) is not None if isinstance(what, re.Pattern) else what in plain(data)
            if found:
                return data
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what!r} on the terminal within {timeout} s; last: {plain(data)[-1500:]!r}")
            if self.poll() is not None and self.since(since) == data:
                raise AssertionError(f"the program ended ({self.status}) before {what!r}: {plain(data)[-1500:]!r}")
            time.sleep(0.05)

    def send(self, keys: str | bytes) -> None:
        os.write(self.fd, keys.encode() if isinstance(keys, str) else keys)

    def resize(self, rows: int, cols: int) -> None:
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def poll(self) -> int | None:
        if self.status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = status
        return self.status

    def wait(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"pid {self.pid} still running after {timeout} s")
            time.sleep(0.05)
        assert self.status is not None
        return self.status

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def close(self) -> None:
        self.kill()
        try:
            self.wait(5)
        finally:
            os.close(self.fd)


def processes_with(marker: str) -> list[str]:
    """Live processes whose environment holds ``marker`` (a test's own path), as 'pid comm'."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if marker.encode() in environ and stat.rsplit(")", 1)[1].split()[0] != "Z":
            found.append(f"{entry} {Path(f'/proc/{entry}/comm').read_text().strip()}")
    return found


def wait_none_with(marker: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (left := processes_with(marker)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"processes left behind: {left}"
