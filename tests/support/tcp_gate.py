"""A TCP relay on loopback in front of a real server, deciding per connection when it gets through.

A held connection is what a stuck server looks like to a client (accepted, never answered); a
dropped one is a server that goes away mid-request. Real sockets both ways: nothing in the
client is replaced.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

# A rule maps a connection's number (0 for the first accepted) to "hold", "forward" or "drop".
Rule = Callable[[int], str]


def hold_all(index: int) -> str:
    return "hold"


def forward_all(index: int) -> str:
    return "forward"


def drop_all(index: int) -> str:
    return "drop"


class Gate:
    def __init__(self, target: tuple[str, int], rule: Rule = hold_all):
        self.target = target
        self._rule = rule
        self._cond = threading.Condition()
        self._closed = False
        self._sockets: list[socket.socket] = []
        self.accepted = 0
        self.forwarded = 0
        self.dropped = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self.url = f"http://{self.address}"
        threading.Thread(target=self._accept, name="tcp-gate-accept", daemon=True).start()

    def __enter__(self) -> Gate:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def set_rule(self, rule: Rule) -> None:
        """Decide again for held connections too."""
        with self._cond:
            self._rule = rule
            self._cond.notify_all()

    def wait_accepted(self, n: int = 1, timeout: float = 10.0) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self.accepted >= n, timeout):
                raise AssertionError(f"{self.address}: {self.accepted} connection(s) in {timeout:.0f} s, wanted {n}")

    def close(self) -> None:
        with self._cond:
            self._closed = True
            socks, self._sockets = self._sockets, []
            self._cond.notify_all()
        try:  # wakes the accept() in progress (close() alone does not, on Linux)
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        for s in socks:
            _close(s)

    def _track(self, s: socket.socket) -> bool:
        with self._cond:
            if self._closed:
                return False
            self._sockets.append(s)
            return True

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:  # closed
                return
            if not self._track(conn):
                _close(conn)
                return
            with self._cond:
                index = self.accepted
                self.accepted += 1
                self._cond.notify_all()
            threading.Thread(target=self._serve, args=(conn, index), name=f"tcp-gate-{index}", daemon=True).start()

    def _serve(self, conn: socket.socket, index: int) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._closed or self._rule(index) != "hold")
            decision = "drop" if self._closed else self._rule(index)
            if decision == "drop":
                self.dropped += 1
            else:
                self.forwarded += 1
        if decision == "drop":
            _close(conn)
            return
        try:
            upstream = socket.create_connection(self.target, timeout=10)
        except OSError:
            _close(conn)
            return
        upstream.settimeout(None)
        if not self._track(upstream):
            _close(upstream)
            _close(conn)
            return
        threading.Thread(target=_pipe, args=(upstream, conn), daemon=True).start()
        _pipe(conn, upstream)


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
        dst.shutdown(socket.SHUT_WR)
    except OSError:  # the other direction or close() ended it
        _close(src)
        _close(dst)


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()
