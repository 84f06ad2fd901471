"""A fault-injecting TCP proxy on loopback, between poolctl and a server (the XAPI simulator, or
a libvirt daemon's TCP port or unix socket): real sockets both ways, nothing in the client replaced.

Raw faults, for any protocol: ``cut()`` closes every open connection; ``refuse(s)`` resets new
connections for ``s`` seconds (``admit()`` ends that early; ``reset=False`` closes them the
polite way, a FIN: a server that goes away); ``stall()`` (or ``stalled=True`` from the start)
accepts and never answers, as a stuck server does (``unstall()`` lets them through, a refuse
drops them); ``wait_accepted(n)`` waits for the n-th connection; ``delay = s`` holds every
chunk from the server that long. The target is a (host, port), a URL, or a unix socket's
``Path`` (libvirtd's). ``libvirt=True`` reads libvirt's RPC packets: ``hold_reply(procedure)``.

HTTP faults (``http=True``, the simulator: XML-RPC on / and JSON-RPC on /jsonrpc): a request is
read whole and its RPC method named (``<methodName>`` or JSON's ``"method"``); a rule set with
``on(method, action)`` decides what the client gets back instead of the server's reply:

    proxy.on("session.login_with_password", replace(xmlrpc_success(42)))     # a wrong type
    proxy.on("Async.VM.pool_migrate", DROP_REPLY, times=1)                   # the reply is lost

An action gets the request and the server's real reply (None when ``forward=False``) and
returns the bytes to send, or DROP_REPLY's None (close without an answer). Builders below make
the replies: ``xmlrpc_success``, ``xapi_failure``, ``http_status`` (500…), ``html_page``,
``garbage``, ``truncated``, ``oversized``.
"""

from __future__ import annotations

import json
import re
import socket
import struct
import threading
import time
import xmlrpc.client
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Action = Callable[["Request", bytes | None], bytes | None]


@dataclass
class Request:
    head: bytes
    body: bytes
    method: str  # the RPC method ("" when none could be read)
    path: str


@dataclass
class _Rule:
    method: str
    action: Action
    times: int | None  # None: every time
    forward: bool  # send the request to the server first (its effect happens; the reply may be lost)
    before: Callable[[Request], None] | None = None  # runs first: another client acting in between
    hits: int = 0


@dataclass
class Seen:
    """What went through: (method, what happened) per request, for assertions."""

    calls: list[tuple[str, str]] = field(default_factory=list)

    def count(self, method: str, outcome: str | None = None) -> int:
        return sum(1 for m, o in self.calls if m == method and (outcome is None or o == outcome))


def DROP_REPLY(request: Request, reply: bytes | None) -> None:
    """The server got and answered the request; the client never hears back."""
    return None


def PASS(request: Request, reply: bytes | None) -> bytes | None:
    """The server's reply, untouched (with ``before``, to act between request and reply)."""
    return reply


def replace(body_or_reply: bytes) -> Action:
    """Always answer this (a full HTTP reply, from the builders below)."""
    return lambda request, reply: body_or_reply


# --- replies ------------------------------------------------------------------------------------


def http_reply(body: bytes, status: str = "200 OK", ctype: str = "text/xml", length: int | None = None) -> bytes:
    n = len(body) if length is None else length
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {n}\r\nConnection: keep-alive\r\n\r\n"
    ).encode() + body


def xmlrpc_success(value: Any) -> bytes:
    """XAPI's success envelope around ``value``, whatever its type."""
    body = xmlrpc.client.dumps(({"Status": "Success", "Value": value},), methodresponse=True)
    return http_reply(body.encode())


def xmlrpc_raw_result(value: Any) -> bytes:
    """A reply without XAPI's envelope: a bare XML-RPC value."""
    return http_reply(xmlrpc.client.dumps((value,), methodresponse=True).encode())


def xapi_failure(*description: str) -> bytes:
    body = xmlrpc.client.dumps(({"Status": "Failure", "ErrorDescription": list(description)},), methodresponse=True)
    return http_reply(body.encode())


def xapi_failure_raw_xml(*description: str) -> bytes:
    """A failure whose strings hold characters XML-RPC cannot escape (ESC, BEL): written raw,
    as a careless server would; the client's parser decides what happens."""
    values = "".join(f"<value><string>{d}</string></value>" for d in description)
    body = (
        "<?xml version='1.0'?><methodResponse><params><param><value><struct>"
        "<member><name>Status</name><value><string>Failure</string></value></member>"
        f"<member><name>ErrorDescription</name><value><array><data>{values}</data></array></value></member>"
        "</struct></value></param></params></methodResponse>"
    )
    return http_reply(body.encode())


def jsonrpc_failure(*description: str, req_id: object = 1) -> bytes:
    body = json.dumps(
        {"jsonrpc": "2.0", "error": {"code": 1, "message": description[0], "data": list(description[1:])}, "id": req_id}
    )
    return http_reply(body.encode(), ctype="application/json")


def http_status(code: int = 500, reason: str = "Internal Server Error", body: bytes = b"oops\n") -> bytes:
    return http_reply(body, f"{code} {reason}", "text/plain")


def html_page() -> bytes:
    return http_reply(b"<!DOCTYPE html><html><body><h1>Welcome to nginx!</h1></body></html>", ctype="text/html")


def garbage(n: int = 512) -> bytes:
    return http_reply(bytes(range(256)) * (n // 256 + 1))


def truncated(request: Request, reply: bytes | None) -> bytes:
    """An action: the real reply cut halfway through its body (the Content-Length still promises
    all; the connection then closes)."""
    assert reply is not None, "truncated() needs the server's reply (forward=True)"
    return reply[: len(reply) - max(1, (len(reply) - reply.index(b"\r\n\r\n")) // 2)]


def oversized(megabytes: int = 64) -> bytes:
    """A reply claiming (and sending) a body far larger than any XAPI reply."""
    return http_reply(b"<" * (megabytes << 20))


# --- the proxy ----------------------------------------------------------------------------------

_METHOD_XML = re.compile(rb"<methodName>\s*([^<\s]+)\s*</methodName>")
_METHOD_JSON = re.compile(rb'"method"\s*:\s*"([^"]+)"')


class FaultProxy:
    def __init__(
        self, target: tuple[str, int] | str | Path, *, http: bool = True, libvirt: bool = False, stalled: bool = False
    ):
        self.unix: Path | None = target if isinstance(target, Path) else None  # a unix socket (libvirtd's)
        if isinstance(target, Path):
            target = ("", 0)
        elif isinstance(target, str):  # a URL: http://host:port
            hostport = target.split("://", 1)[-1].split("/", 1)[0]
            host, port = hostport.rsplit(":", 1)
            target = (host, int(port))
        self.target = target
        self.http = http
        self.libvirt = libvirt  # raw mode that reads libvirt's RPC packets (hold_reply)
        self.held = threading.Event()  # a reply hold_reply() asked for was held back
        self._hold: dict[int, int] = {}  # procedure -> calls of it per connection let through first
        self.delay = 0.0
        self.seen = Seen()
        self._rules: list[_Rule] = []
        self._lock = threading.Condition()
        self._closed = False
        self._stalled = stalled
        self._refuse_until = 0.0
        self._reset = True  # refused connections get an RST (else a FIN)
        self._sockets: set[socket.socket] = set()
        self.accepted = 0
        self.forwarded = 0  # connections passed on to the target
        self.dropped = 0  # connections refused or dropped while held
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.address}"
        threading.Thread(target=self._accept, name="fault-proxy", daemon=True).start()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- faults ---------------------------------------------------------------------------------

    def on(
        self,
        method: str,
        action: Action | None = None,
        *,
        times: int | None = None,
        forward: bool = True,
        before: Callable[[Request], None] | None = None,
    ) -> None:
        """For requests calling ``method``: ``before(request)`` first, then (``forward``) the
        server, then ``action`` decides what the client gets (None: the server's reply)."""
        with self._lock:
            self._rules.append(_Rule(method, action or PASS, times, forward, before))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def cut(self) -> None:
        """Close every open connection, both ways (new ones still get through)."""
        with self._lock:
            socks, self._sockets = self._sockets, set()
        for s in socks:
            _reset(s, wake=True)

    def refuse(self, seconds: float = float("inf"), *, reset: bool = True) -> None:
        """New connections are reset (``reset=False``: closed) for ``seconds``; open and held ones
        are cut."""
        with self._lock:
            self._refuse_until = time.monotonic() + seconds
            self._reset = reset
            self._lock.notify_all()
        self.cut()

    def admit(self) -> None:
        """End a ``refuse``: new connections get through again (open ones are left alone)."""
        with self._lock:
            self._refuse_until = 0.0

    def hold_reply(self, procedure: int, *, after: int = 0) -> None:
        """(``libvirt=True``) The daemon's replies to calls of RPC ``procedure`` are never passed
        on, past the first ``after`` on each connection (libvirt's open makes some): the client
        waits for them, as on a link that dies mid-call (``held`` is set)."""
        with self._lock:
            self._hold[procedure] = after

    def stall(self) -> None:
        """New connections are accepted and never answered, until ``unstall()``."""
        with self._lock:
            self._stalled = True

    def unstall(self) -> None:
        with self._lock:
            self._stalled = False
            self._lock.notify_all()

    def wait_accepted(self, n: int = 1, timeout: float = 10.0) -> None:
        with self._lock:
            if not self._lock.wait_for(lambda: self.accepted >= n, timeout):
                raise AssertionError(f"{self.address}: {self.accepted} connection(s) in {timeout:.0f} s, wanted {n}")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        self.cut()

    # --- plumbing -------------------------------------------------------------------------------

    def _track(self, s: socket.socket) -> bool:
        with self._lock:
            if self._closed:
                return False
            self._sockets.add(s)
            return True

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                self._lock.notify_all()
                refusing, reset = time.monotonic() < self._refuse_until, self._reset
                self.dropped += refusing
            if refusing:
                (_reset if reset else _close)(conn)
                continue
            if not self._track(conn):
                _reset(conn)
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with self._lock:
            self._lock.wait_for(lambda: self._closed or not self._stalled or self._refusing())
            if self._closed or self._refusing():  # dropped while held
                self.dropped += 1
                _close(conn)
                return
            self.forwarded += 1
        try:
            upstream = self._upstream()
        except OSError:
            _reset(conn)
            return
        if not self._track(upstream):
            _reset(upstream)
            _reset(conn)
            return
        try:
            if self.http:
                self._serve_http(conn, upstream)
            else:
                upstream.settimeout(None)
                if self.libvirt:
                    held: _Held = _Held()
                    threading.Thread(target=self._libvirt_pipe, args=(upstream, conn, held), daemon=True).start()
                    self._libvirt_pipe(conn, upstream, held, upwards=True)
                else:
                    threading.Thread(target=self._pipe, args=(upstream, conn), daemon=True).start()
                    self._pipe(conn, upstream, delayed=False)
        except OSError:
            pass
        finally:
            _close(conn)
            _close(upstream)

    def _upstream(self) -> socket.socket:
        if self.unix is None:
            return socket.create_connection(self.target, timeout=30)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        s.connect(str(self.unix))
        return s

    def _pipe(self, src: socket.socket, dst: socket.socket, delayed: bool = True) -> None:
        try:
            while data := src.recv(65536):
                if delayed and self.delay:
                    time.sleep(self.delay)
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            _close(src)
            _close(dst)

    def _libvirt_pipe(self, src: socket.socket, dst: socket.socket, held: _Held, upwards: bool = False) -> None:
        """As _pipe, a whole RPC packet at a time: [length][program][version][procedure][type]
        [serial][status] (libvirt's src/rpc/virnetprotocol.x); calls are noted in ``seen`` as
        ("libvirt:N", "call"), held replies as ("libvirt:N", "reply held")."""
        buf = b""
        try:
            while data := src.recv(65536):
                buf += data
                while len(buf) >= 4 and len(buf) >= (size := struct.unpack(">I", buf[:4])[0]):
                    packet, buf = buf[:size], buf[size:]
                    _prog, _vers, proc, kind, serial = struct.unpack(">IIiII", packet[4:24])
                    if upwards and kind == 0:  # a call
                        self.seen.calls.append((f"libvirt:{proc}", "call"))
                        held.calls[proc] = held.calls.get(proc, 0) + 1
                        with self._lock:
                            if proc in self._hold and held.calls[proc] > self._hold[proc]:
                                held.serials.add(serial)
                    elif kind == 1 and serial in held.serials:  # its reply
                        self.seen.calls.append((f"libvirt:{proc}", "reply held"))
                        self.held.set()
                        continue
                    if not upwards and self.delay:
                        time.sleep(self.delay)
                    dst.sendall(packet)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            _close(src)
            _close(dst)

    def _refusing(self) -> bool:
        return time.monotonic() < self._refuse_until

    def _rule_for(self, method: str) -> _Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.method == method and (rule.times is None or rule.hits < rule.times):
                    rule.hits += 1
                    return rule
        return None

    def _serve_http(self, conn: socket.socket, upstream: socket.socket) -> None:
        client, server = _Reader(conn), _Reader(upstream)
        while True:
            message = client.http_message()
            if message is None:
                return
            head, body = message
            request = Request(head, body, _method_of(body), head.split(b" ", 2)[1].decode("latin-1"))
            rule = self._rule_for(request.method)
            if rule is not None and rule.before is not None:
                rule.before(request)
            reply: bytes | None = None
            if rule is None or rule.forward:
                upstream.sendall(head + body)
                answer = server.http_message()
                if answer is None:
                    self.seen.calls.append((request.method, "server closed"))
                    return
                reply = answer[0] + answer[1]
            if self.delay:
                time.sleep(self.delay)
            if rule is None:
                self.seen.calls.append((request.method, "passed"))
                conn.sendall(reply or b"")
                continue
            out = rule.action(request, reply)
            if out is None:
                self.seen.calls.append((request.method, "reply dropped"))
                _close(conn)
                return
            self.seen.calls.append((request.method, "rewritten"))
            conn.sendall(out)
            if rule.action is truncated:
                _close(conn)  # what was promised never comes
                return


@dataclass
class _Held:
    """One libvirt connection's calls: how many of each procedure, which serials to hold."""

    calls: dict[int, int] = field(default_factory=dict)
    serials: set[int] = field(default_factory=set)


class _Reader:
    """Whole HTTP messages (head, body) off a socket, by Content-Length."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = b""

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buf += data
        return bool(data)

    def http_message(self) -> tuple[bytes, bytes] | None:
        try:
            while b"\r\n\r\n" not in self.buf:
                if not self._fill():
                    return None
            end = self.buf.index(b"\r\n\r\n") + 4
            head = self.buf[:end]
            match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            length = int(match.group(1)) if match else 0
            while len(self.buf) < end + length:
                if not self._fill():
                    return None
        except OSError:
            return None
        body = self.buf[end : end + length]
        self.buf = self.buf[end + length :]
        return head, body


def _method_of(body: bytes) -> str:
    match = _METHOD_XML.search(body[:4096]) or _METHOD_JSON.search(body[:4096])
    return match.group(1).decode("utf-8", "replace") if match else ""


def _reset(s: socket.socket, *, wake: bool = False) -> None:
    """Close with an RST, as a dead peer or a firewall's reject looks. ``wake``: the socket may
    be in use by another thread (a pipe blocked in recv), which only shutdown() wakes; the
    peer then sees the connection end (FIN or RST)."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        _close(s)
        return
    if wake:
        _close(s)
    else:
        s.close()  # no shutdown() first: that would send a FIN, not the RST


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()
