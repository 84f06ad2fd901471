"""Run a program in a pseudo-terminal of a fixed size and count what it writes to it."""

from __future__ import annotations

import collections
import fcntl
import os
import re
import select
import struct
import subprocess
import termios
import threading
import time

_GOTO = re.compile(rb"\x1b\[(\d+);\d+H")


def bytes_by_row(data: bytes) -> collections.Counter:
    """Output bytes attributed to the screen row each cursor move (CSI row;col H) goes to."""
    rows: collections.Counter = collections.Counter()
    row = 0  # 0: before the first move
    pos = 0
    for m in _GOTO.finditer(data):
        rows[row] += m.start() - pos
        row, pos = int(m.group(1)), m.start()
    rows[row] += len(data) - pos
    return rows


class PtyProgram:
    """A child process on a fresh pty; a reader thread drains and counts its output."""

    def __init__(self, argv: list[str], *, cols: int = 120, rows: int = 40, env: dict | None = None):
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        full_env = dict(os.environ, TERM="xterm-256color", COLUMNS=str(cols), LINES=str(rows), **(env or {}))
        full_env.pop("NO_COLOR", None)
        self.proc = subprocess.Popen(
            argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=full_env,
            start_new_session=True,
            close_fds=True,
            # The pty becomes the child's controlling terminal, as under a real terminal emulator.
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
        )
        os.close(slave)
        self._lock = threading.Lock()
        self.total = 0
        self._last_output = time.monotonic()
        self._tail = bytearray()  # the most recent output, for "did X appear" checks
        self._closed = threading.Event()
        self._reader = threading.Thread(target=self._drain, name="pty-reader", daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        while not self._closed.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if not ready:
                continue
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: the child closed the pty
                break
            if not data:
                break
            with self._lock:
                self.total += len(data)
                self._last_output = time.monotonic()
                self._tail += data
                del self._tail[:-262144]

    @property
    def last_output(self) -> float:
        """monotonic() of the most recent output."""
        with self._lock:
            return self._last_output

    def count(self) -> int:
        with self._lock:
            return self.total

    def recent_text(self) -> str:
        return self.recent_bytes().decode(errors="replace")

    def recent_bytes(self) -> bytes:
        with self._lock:
            return bytes(self._tail)

    def clear_recent(self) -> None:
        with self._lock:
            self._tail.clear()

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def wait_quiet(self, quiet_s: float, timeout_s: float) -> bool:
        """Wait until nothing was written for ``quiet_s``; False when it never went quiet."""
        start = time.monotonic()
        deadline = start + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"program exited with {self.proc.returncode}: {self.recent_text()[-300:]!r}")
            with self._lock:
                silent = time.monotonic() - max(self._last_output, start)
            if silent >= quiet_s and self.total > 0:
                return True
            time.sleep(0.05)
        return False

    def bytes_over(self, seconds: float, action=None, every_s: float | None = None) -> float:
        """Bytes per second written during ``seconds``, calling ``action()`` every ``every_s``."""
        start = self.count()
        t0 = time.monotonic()
        next_action = t0
        while (now := time.monotonic()) - t0 < seconds:
            if action is not None and every_s and now >= next_action:
                action()
                next_action += every_s
            time.sleep(min(0.01, max(0.0, seconds - (now - t0))))
        return (self.count() - start) / (time.monotonic() - t0)

    def close(self, quit_keys: bytes = b"\x11") -> None:
        """Ask politely (ctrl+q), then terminate, then kill: only our own child."""
        try:
            if self.proc.poll() is None:
                self.send(quit_keys)
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.terminate()
                    try:
                        self.proc.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        self.proc.kill()
                        self.proc.wait()
        finally:
            self._closed.set()
            self._reader.join(timeout=2)
            os.close(self.master)
