"""HTTP(S) front end: one listener per host address, all on the same port.

The master's address (and the `host` alias given to serve()) serves the pool; other hosts'
addresses answer login with HOST_IS_SLAVE. Paths are matched as xapi's Http_svr does, by longest
prefix: /jsonrpc... is JSON-RPC, any other POST (/, /RPC2, /json, /xmlrpc, ...) falls to the
"/" handler and is XML-RPC.
Threads are daemons; close() stops listeners, drops open connections and wakes long-polls.
"""

from __future__ import annotations

import errno
import logging
import re
import shutil
import socket
import socketserver
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, parse_qsl, urlsplit

from . import blobs, cross_pool_receive, errors
from .rpc import CallStats, Dispatcher
from .tls import make_certificate

if TYPE_CHECKING:
    from .state import PoolState

log = logging.getLogger(__name__)
_SESSION_IN_QUERY = re.compile(r"session_id=[^&\s]+")
_ERROR_PAGE = (
    "<html><body><h1>HTTP 500 internal server error</h1>An unexpected error occurred; please "
    "wait a while and try again.<h1> Additional information </h1>{}</body></html>"
)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Listener

    def _agent_down(self) -> bool:
        """The host's xapi is restarting or shut down: the connection just drops."""
        if self.server.front.agent_down(self.server.front.host_for(self.connection)):
            self.close_connection = True
            return True
        return False

    def do_POST(self) -> None:
        if self._agent_down():
            return
        path = urlsplit(self.path).path
        dispatcher = self.server.front.dispatcher
        if not path.startswith("/jsonrpc"):
            handle, ctype = dispatcher.xmlrpc, "text/xml"
        elif dispatcher.pool.jsonrpc:
            handle, ctype = dispatcher.jsonrpc, "application/json"
        else:  # a pool set up to serve no JSON-RPC (the XML-RPC fallback's benchmark)
            self._send(404, b"Not found\n", "text/plain")
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            out = handle(body, self.server.front.host_for(self.connection), self.headers.get("User-Agent"))
        except errors.HttpError as exc:
            page = _ERROR_PAGE.format(str(exc).replace("&", "&amp;").replace("<", "&lt;"))
            self._send(500, page.encode(), "text/html", close=True)
            return
        except ValueError:
            self._send(400, b"Bad Content-Length\n", "text/plain", close=True)
            return
        self._send(200, out, ctype)

    def do_GET(self) -> None:
        if self._agent_down():
            return
        if urlsplit(self.path).path == "/blob":
            self._blob("GET", b"")
            return
        self._send(200, b"<html><body>XAPI simulator (poolctl)</body></html>\n", "text/html")

    def do_PUT(self) -> None:
        if self._agent_down():
            return
        parts = urlsplit(self.path)
        try:
            length = int(self.headers.get("Content-Length") or "")
        except ValueError:  # xapi_blob.ml: "Need content length"
            self._send(400, b"Need content length\n", "text/plain", close=True)
            return
        body = self.rfile.read(length)
        if parts.path == "/blob":
            self._blob("PUT", body)
            return
        # xapi's HTTP handlers of a cross-pool move (/import_metadata, the xenops memory)
        query = dict(parse_qsl(parts.query))
        code, out = cross_pool_receive.handle_put(self.server.front.pool, parts.path, query, body)
        self._send(code, out, "application/json" if code == 200 else "text/plain")

    def _blob(self, method: str, body: bytes) -> None:
        query = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}
        code, out, ctype = blobs.handle(self.server.front.dispatcher.pool, method, query, body)
        self._send(code, out, ctype, close=True)  # xapi closes blob connections (req.close)

    def _send(self, code: int, body: bytes, ctype: str, close: bool = False) -> None:
        try:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-cache, no-store")
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        # a cross-pool move's PUTs carry the session in their query: not in the log
        log.debug("%s %s", self.address_string(), _SESSION_IN_QUERY.sub("session_id=(hidden)", format % args))


class _Listener(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, front: SimServer, address: tuple[str, int]) -> None:
        self.front = front
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn), which can stall for seconds
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.bound

    @property
    def bound(self) -> tuple[str, int]:
        """The (address, port) listened on (an AF_INET socket's, whatever typeshed allows)."""
        host, port = self.server_address[:2]
        return str(host), int(port)

    def process_request_thread(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: object
    ) -> None:
        if not isinstance(request, socket.socket):  # a datagram server's request; this one is TCP
            super().process_request_thread(request, client_address)
            return
        try:  # headers and body go out in separate writes: don't let Nagle hold the body back
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        if self.front.ssl_context is not None:
            try:
                request.settimeout(30)
                request = self.front.ssl_context.wrap_socket(request, server_side=True)
                request.settimeout(None)
            except (OSError, ssl.SSLError) as exc:
                log.debug("TLS handshake from %s failed: %s", client_address, exc)
                self.shutdown_request(request)
                return
        self.front.track(request, True)
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.front.track(request, False)

    def handle_error(self, request: object, client_address: object) -> None:
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


class SimServer:
    """The running front end of one Simulator."""

    def __init__(self, pool: PoolState, bind_host: str, port: int, tls: bool) -> None:
        self.pool = pool
        self.dispatcher = Dispatcher(pool)
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._agent_back: dict[str, float] = {}  # host -> when its xapi answers again (inf: never)
        pool.settings["agent_control"] = self  # host.restart_agent / shutdown_agent reach it here
        hosts = {ref: pool.db.field("host", ref, "address") for ref in pool.db.refs("host")}
        self._address_host = {addr: ref for ref, addr in hosts.items()}
        master_addr = hosts[pool.master]
        wildcard = bind_host in ("", "0.0.0.0", "::")
        if wildcard:  # one socket covers every host address; host_for() tells them apart
            addresses = [bind_host]
        else:
            addresses = [master_addr, *(a for r, a in hosts.items() if r != pool.master)]
            if bind_host not in addresses:
                addresses.append(bind_host)
        self.cert_path = self.key_path = None
        self.ssl_context: ssl.SSLContext | None = None
        if tls:
            self.cert_path, self.key_path = make_certificate([*hosts.values(), *([] if wildcard else [bind_host])])
            self.ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ssl_context.load_cert_chain(self.cert_path, self.key_path)
        self._listeners = self._bind(addresses, port)
        self.port = self._listeners[0].bound[1]
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://{master_addr}:{self.port}"
        self.host_urls = {
            pool.db.field("host", ref, "name_label"): f"{scheme}://{addr}:{self.port}" for ref, addr in hosts.items()
        }
        alias = not wildcard and bind_host not in hosts.values()
        self.alias_url = f"{scheme}://{bind_host}:{self.port}" if alias else self.url
        self._threads = []
        for listener in self._listeners:
            t = threading.Thread(
                target=listener.serve_forever,
                kwargs={"poll_interval": 2.0},
                name=f"xapisim-listen-{listener.bound[0]}",
                daemon=True,
            )
            t.start()
            self._threads.append(t)

    @property
    def stats(self) -> CallStats:
        return self.dispatcher.stats

    def _bind(self, addresses: list[str], port: int) -> list[_Listener]:
        attempts = 20 if port == 0 else 1
        for _ in range(attempts):
            listeners: list[_Listener] = []
            try:
                for addr in addresses:
                    listeners.append(_Listener(self, (addr, port or (listeners[0].bound[1] if listeners else 0))))
                return listeners
            except OSError as exc:
                for listener in listeners:
                    listener.server_close()
                if port != 0 or exc.errno != errno.EADDRINUSE:
                    raise OSError(exc.errno, f"cannot listen on {addr}:{port}: {exc.strerror}") from None
        raise OSError(errno.EADDRINUSE, f"no port free on all of {', '.join(addresses)}")

    def host_for(self, conn: socket.socket) -> str:
        """The host whose address the client connected to (unknown addresses are the master)."""
        try:
            local = conn.getsockname()[0]
        except OSError:
            return self.pool.master
        return self._address_host.get(local, self.pool.master)

    # -- the hosts' toolstacks (host.restart_agent, host.shutdown_agent) -----------------------
    def agent_down(self, host: str) -> bool:
        with self._lock:
            return time.monotonic() < self._agent_back.get(host, 0.0)

    def stop_agent(self, host: str, seconds: float) -> None:
        """The host's xapi stops for `seconds` (math.inf: for good): its open connections are cut
        (event.from long-polls included) and requests to it get no answer meanwhile."""
        with self._lock:
            self._agent_back[host] = time.monotonic() + seconds
            conns = [c for c in self._connections if self.host_for(c) == host]
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def start_agent(self, host: str) -> None:
        with self._lock:
            self._agent_back.pop(host, None)

    def track(self, conn: socket.socket, active: bool) -> None:
        with self._lock:
            (self._connections.add if active else self._connections.discard)(conn)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.dispatcher.closing.set()
        self.pool.db.wake_all()
        stoppers = [threading.Thread(target=listener.shutdown, daemon=True) for listener in self._listeners]
        for s in stoppers:
            s.start()
        for listener in self._listeners:  # wake serve_forever's select instead of waiting a poll
            try:
                socket.create_connection(listener.bound, timeout=0.5).close()
            except OSError:
                pass
        for s in stoppers:
            s.join(5)
        for listener in self._listeners:
            listener.server_close()
        with self._lock:
            conns = list(self._connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self.cert_path is not None:
            shutil.rmtree(self.cert_path.parent, ignore_errors=True)

    def __enter__(self) -> SimServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
