"""The fault proxy itself, in raw TCP mode (how it stands in front of a libvirt daemon's TCP
port): it passes bytes, cuts, refuses, stalls and delays as it says. A loopback echo server
is the far side."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.support.fault_proxy import FaultProxy

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def echo() -> Iterator[tuple[str, int]]:
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=lambda c=conn: _echo(c), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()
    listener.close()


def _echo(conn: socket.socket) -> None:
    with conn:
        while data := conn.recv(4096):
            conn.sendall(data)


def roundtrip(proxy: FaultProxy, payload: bytes = b"ping", timeout: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=timeout) as s:
        s.sendall(payload)
        return s.recv(4096)


def test_raw_mode_passes_bytes_both_ways(echo):
    with FaultProxy(echo, http=False) as proxy:
        assert roundtrip(proxy, b"hello libvirt") == b"hello libvirt"


def test_cut_ends_open_connections(echo):
    with FaultProxy(echo, http=False) as proxy:
        s = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        s.sendall(b"a")
        assert s.recv(10) == b"a"
        proxy.cut()
        with _ends(s):
            pass
        assert roundtrip(proxy) == b"ping"  # new connections get through again


class _ends:
    """The socket is closed by the peer: recv gives b'' or raises a reset."""

    def __init__(self, s: socket.socket):
        self.s = s

    def __enter__(self) -> None:
        try:
            data = self.s.recv(10)
        except OSError:
            return
        assert data == b"", data

    def __exit__(self, *exc: object) -> None:
        self.s.close()


def test_refuse_resets_new_connections_for_a_while(echo):
    with FaultProxy(echo, http=False) as proxy:
        proxy.refuse(1.0)
        with pytest.raises(OSError):
            roundtrip(proxy)
        time.sleep(1.1)
        assert roundtrip(proxy) == b"ping"


def test_stall_holds_connections_until_unstalled(echo):
    with FaultProxy(echo, http=False) as proxy:
        proxy.stall()
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=0.5) as s:
            s.sendall(b"x")
            with pytest.raises(TimeoutError):
                s.recv(10)
            proxy.unstall()
            s.settimeout(5)
            assert s.recv(10) == b"x"


def test_delay_holds_each_reply(echo):
    with FaultProxy(echo, http=False) as proxy:
        proxy.delay = 0.5
        t0 = time.monotonic()
        assert roundtrip(proxy) == b"ping"
        assert time.monotonic() - t0 >= 0.5
