"""Reaching XAPI: TLS policy, master discovery, logins and a small pool of sessions.

The SDK's ``XenAPI.Session`` is not thread-safe, so every thread that talks to XAPI
holds a session of its own for the length of its call: ``SessionPool.session()`` hands
out an idle logged-in session (or logs in a new one, up to ``size`` at once) and takes
it back afterwards. Long-lived users (the event thread, a migration) open their own.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import socket
import ssl
import threading
import xmlrpc.client
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import XenAPI

from poolctl.backends.base import BackendError, ConnectionLost
from poolctl.backends.xen.config import XenConfig
from poolctl.backends.xen.errors import XapiErrors, is_connection_error
from poolctl.backends.xen.unmarshal import CHUNK, Unmarshaller
from poolctl.poolconfig import ConfigError

log = logging.getLogger("poolctl.backends.xen")

API_VERSION = "2.x"
ORIGINATOR = "poolctl"
CALL_TIMEOUT_S = 30.0
LOGOUT_TIMEOUT_S = 5.0  # logging out happens while poolctl closes: do not hold the exit up
MAX_REDIRECTS = 3

_Host = tuple[str, dict[str, str]] | str  # what xmlrpc.client passes make_connection


class FingerprintMismatch(ssl.SSLError):
    """The peer's certificate is not the one pinned in the configuration."""

    hint = "if the host's certificate was replaced on purpose, pin the new fingerprint"

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "certificate fingerprint mismatch"  # not a tuple's repr


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args: Any, fingerprint: bytes | None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._fingerprint = fingerprint

    def connect(self) -> None:
        super().connect()
        if self._fingerprint is None:
            return
        der = self.sock.getpeercert(binary_form=True) or b""
        seen = hashlib.sha256(der).hexdigest()
        if bytes.fromhex(seen) != self._fingerprint:
            self.sock.close()
            self.sock = None
            raise FingerprintMismatch(
                f"certificate of {self.host}:{self.port} has sha256 fingerprint {_colons(seen)}, "
                f"not the pinned {_colons(self._fingerprint.hex())}"
            )


def _colons(hexstr: str) -> str:
    return ":".join(hexstr[i : i + 2] for i in range(0, len(hexstr), 2)).upper()


class _Abortable(xmlrpc.client.Transport):
    """Lets another thread break a call that blocks in ``recv`` (the event long-poll), and a
    caller turn off xmlrpc.client's resend of a request whose connection dropped."""

    aborted = False
    resend = True  # see no_resend()

    def request(self, host: _Host, handler: str, request_body: Any, verbose: bool = False) -> tuple[Any, ...]:
        if self.resend:
            return super().request(host, handler, request_body, verbose)
        return self.single_request(host, handler, request_body, verbose)

    def abort(self) -> None:
        # xmlrpc.client retries a request once on a dropped connection: refuse new ones too.
        self.aborted = True
        conn = self._connection[1] if self._connection else None
        sock = getattr(conn, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _FastParse:
    """Replies parsed with unmarshal.py (C expat + ElementTree) in 64 KiB reads, not 1 KiB ones."""

    record_fields: frozenset[str] | None = None  # see records_cut_to

    def parse_response(self, response: http.client.HTTPResponse) -> tuple[Any, ...]:
        stream: http.client.HTTPResponse | xmlrpc.client.GzipDecodedResponse = response
        if hasattr(response, "getheader") and response.getheader("Content-Encoding", "") == "gzip":
            stream = xmlrpc.client.GzipDecodedResponse(response)
        unmarshaller = Unmarshaller(self.record_fields)
        while chunk := stream.read(CHUNK):
            unmarshaller.feed(chunk)
        if stream is not response:
            stream.close()
        return unmarshaller.close()


class HTTPTransport(_FastParse, _Abortable, xmlrpc.client.Transport):
    def __init__(self, timeout: float):
        super().__init__()
        self.timeout = timeout

    def make_connection(self, host: _Host) -> http.client.HTTPConnection:
        if self.aborted:
            raise ConnectionAbortedError("connection closed by poolctl")
        conn = super().make_connection(host)
        conn.timeout = self.timeout
        return conn


class HTTPSTransport(_FastParse, _Abortable, xmlrpc.client.SafeTransport):
    context: ssl.SSLContext  # SafeTransport keeps it (typeshed does not say so)

    def __init__(self, timeout: float, context: ssl.SSLContext, fingerprint: bytes | None):
        super().__init__(context=context)
        self.timeout = timeout
        self.fingerprint = fingerprint

    def make_connection(self, host: _Host) -> http.client.HTTPSConnection:
        if self.aborted:
            raise ConnectionAbortedError("connection closed by poolctl")
        cached_host, cached = self._connection
        if host == cached_host and isinstance(cached, http.client.HTTPSConnection):
            return cached
        chost, self._extra_headers, _x509 = self.get_host_info(host)
        conn = _PinnedHTTPSConnection(chost, timeout=self.timeout, context=self.context, fingerprint=self.fingerprint)
        self._connection = host, conn
        return conn


@contextmanager
def records_cut_to(session: XenAPI.Session, fields: tuple[str, ...]) -> Iterator[bool]:
    """While inside, get_all_records replies on ``session`` keep only ``fields`` of each record
    (cut as they are parsed). Only around a get_all_records call: another struct-of-structs reply
    would be cut too. Yields False when the session's transport cannot cut."""
    transport = getattr(session, "transport", None)
    if not isinstance(transport, _FastParse):
        yield False
        return
    transport.record_fields = frozenset(fields)
    try:
        yield True
    finally:
        transport.record_fields = None


@contextmanager
def no_resend(session: XenAPI.Session) -> Iterator[None]:
    """While inside, a call on ``session`` is sent once. xmlrpc.client sends a request again
    when its connection drops before the reply: harmless for a read, but a second
    ``Async.VM.pool_migrate`` is a second migration (XAPI refuses it, and the first goes on
    unwatched). The cached connection is closed first, so the one attempt goes out on a fresh
    one and a keep-alive connection gone cold cannot pose as a lost reply."""
    transport = getattr(session, "transport", None)
    if not isinstance(transport, _Abortable):
        yield
        return
    transport.close()
    transport.resend = False
    try:
        yield
    finally:
        transport.resend = True


def parse_fingerprint(config: XenConfig) -> bytes | None:
    if not config.fingerprint:
        return None
    text = config.fingerprint.replace(":", "").replace(" ", "").strip().lower()
    if text.startswith("sha256"):
        text = text[len("sha256") :].lstrip("=")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise BackendError(
            f"pool {config.name!r}: fingerprint must be a sha256 digest (64 hex digits, colons allowed)",
            code="BAD_CONFIG",
        )
    return raw


def ssl_context(config: XenConfig) -> ssl.SSLContext:
    """Verification on by default; a pinned fingerprint replaces CA checks for self-signed hosts."""
    if not config.verify_tls or config.fingerprint:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    if config.ca_file is not None:
        if not config.ca_file.is_file():
            raise BackendError(
                f"pool {config.name!r}: ca_file {str(config.ca_file)!r} does not exist", code="BAD_CONFIG"
            )
        return ssl.create_default_context(cafile=str(config.ca_file))
    return ssl.create_default_context()


def replace_host(url: str, address: str) -> str:
    """``url`` with its host replaced by ``address``, keeping scheme, port and path."""
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address and not address.startswith("[") else address
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class Connector:
    """Knows where the master is and how to log in; every session comes from here."""

    def __init__(self, config: XenConfig):
        self.config = config
        if not config.url:
            raise BackendError(
                f'pool {config.name!r}: the xen backend needs url = "https://<pool master>"', code="BAD_CONFIG"
            )
        parts = urlsplit(config.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BackendError(
                f"pool {config.name!r}: url {config.url!r} must look like https://host[:port]", code="BAD_CONFIG"
            )
        if parts.username or parts.password:
            raise BackendError(
                f"pool {config.name!r}: put credentials in username/password, not in the url", code="BAD_CONFIG"
            )
        self.url = config.url
        self._context = ssl_context(config) if parts.scheme == "https" else None
        self._fingerprint = parse_fingerprint(config)
        self._password: str | None = None
        self.errors = XapiErrors(config.name, self._secrets)
        self._handles: set[str] = set()
        self._lock = threading.Lock()
        self.jsonrpc: bool | None = None  # does the pool serve JSON-RPC? (None: not tried yet)

    def __repr__(self) -> str:
        return f"<Connector pool={self.config.name!r} url={self.url!r}>"

    @property
    def where(self) -> str:
        parts = urlsplit(self.url)
        return parts.netloc or self.url

    def _secrets(self) -> list[str]:
        with self._lock:
            out = list(self._handles)
        if self._password:
            out.append(self._password)
        return out

    def remember(self, session: XenAPI.Session) -> None:
        """Note the session's handle so no message ever shows it (the SDK may re-login)."""
        handle = session._session
        if handle:
            with self._lock:
                self._handles.add(handle)

    def keep_secret(self, value: str) -> None:
        """A secret besides the sessions (another pool's session in a migrate_receive map): no
        message or log line of this pool shows it."""
        if value:
            with self._lock:
                self._handles.add(value)

    def http_connection(self, timeout: float = CALL_TIMEOUT_S) -> http.client.HTTPConnection:
        """A plain HTTP(S) connection to the current master, under the same TLS policy as the
        SDK's sessions (CA checks or the pinned fingerprint): for the JSON-RPC bulk read."""
        parts = urlsplit(self.url)
        host = parts.hostname
        assert host, "__init__ takes only a url with a host, and replace_host keeps one"
        if self._context is None:
            return http.client.HTTPConnection(host, parts.port, timeout=timeout)
        return _PinnedHTTPSConnection(
            host, parts.port, timeout=timeout, context=self._context, fingerprint=self._fingerprint
        )

    def _transport(self, timeout: float) -> HTTPTransport | HTTPSTransport:
        if self._context is None:
            return HTTPTransport(timeout)
        return HTTPSTransport(timeout, self._context, self._fingerprint)

    def logout(self, session: XenAPI.Session) -> None:
        """Log ``session`` out, also after ``abort`` broke its transport (the event long-poll
        at close): the logout then travels on a fresh connection. Otherwise XAPI keeps the
        session until it ages out, and every run of poolctl would leave one behind."""
        transport = getattr(session, "transport", None)
        if not getattr(transport, "aborted", False):
            logout_quietly(session)
            return
        handle = session._session
        _close_quietly(session)
        self.logout_handle(handle)

    def logout_handle(self, handle: str | None) -> None:
        """Log out a session of this pool known only by its handle (one host.migrate_receive
        made for a map), on a connection of its own; quietly: it may be gone already."""
        if not handle:
            return
        fresh = XenAPI.Session(self.url, transport=self._transport(LOGOUT_TIMEOUT_S))
        try:
            fresh.session.logout(handle)  # the raw call: this session object never logged in
        except Exception:
            pass
        _close_quietly(fresh)

    def open(self, timeout: float = CALL_TIMEOUT_S) -> XenAPI.Session:
        """A logged-in session on the master, following HOST_IS_SLAVE redirects."""
        if self._password is None:
            try:
                self._password = self.config.resolve_password()
            except ConfigError as exc:
                raise BackendError(str(exc), code="BAD_CONFIG") from None
        for _ in range(MAX_REDIRECTS + 1):
            url = self.url
            session = XenAPI.Session(url, transport=self._transport(timeout))
            try:
                session.login_with_password(self.config.username, self._password, API_VERSION, ORIGINATOR)
            except XenAPI.Failure as exc:
                details = [str(d) for d in exc.details]
                if details and details[0] == "HOST_IS_SLAVE" and len(details) > 1:
                    _close_quietly(session)
                    if not plausible_host(details[1]):
                        raise BackendError(
                            f"pool {self.config.name!r}: {urlsplit(url).netloc} redirected the login to "
                            f"{describe_value(details[1])}, which is not a host address",
                            code="BAD_REPLY",
                            host=urlsplit(url).netloc,
                        ) from None
                    self.url = replace_host(url, details[1])
                    log.info(
                        "pool %s: %s is not the master; following to %s",
                        self.config.name,
                        urlsplit(url).netloc,
                        self.where,
                    )
                    continue
                _close_quietly(session)
                raise self.errors.map(
                    exc, f"logging in to {urlsplit(url).netloc}", where=urlsplit(url).netloc
                ) from None
            except Exception as exc:
                _close_quietly(session)
                raise self.errors.map(exc, "connecting", where=urlsplit(url).netloc) from None
            wrong = not_a_session_ref(session._session)
            if wrong:
                # Used as it is, an int or a list breaks far away (a TypeError in the scrubber).
                _close_quietly(session)
                raise BackendError(
                    f"pool {self.config.name!r}: {urlsplit(url).netloc} answered the login with {wrong}, "
                    "not a session reference",
                    code="BAD_REPLY",
                    host=urlsplit(url).netloc,
                )
            self.remember(session)
            return session
        raise ConnectionLost(
            f"pool {self.config.name!r}: gave up after {MAX_REDIRECTS} HOST_IS_SLAVE redirects (last: {self.where})",
            code="HOST_IS_SLAVE",
            host=self.where,
        )


MAX_REF_LEN = 256  # XAPI's refs are "OpaqueRef:" + a UUID; far longer is not one


def describe_value(value: object) -> str:
    """What a reply held, in words, without repeating it (it may be huge, or a secret)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, (list, tuple)):
        return f"an array of {len(value)}"
    if isinstance(value, dict):
        return f"a struct of {len(value)} field(s)"
    if isinstance(value, str):
        return "an empty string" if not value else f"a {len(value):,}-character string"
    return f"a {type(value).__name__}"


def not_a_session_ref(value: object) -> str:
    """Why ``value`` cannot be a session reference (empty when it can)."""
    if isinstance(value, str) and 0 < len(value) <= MAX_REF_LEN and value.isprintable() and " " not in value:
        return ""
    return describe_value(value)


def plausible_host(value: str) -> bool:
    """A HOST_IS_SLAVE parameter that can be put into a URL: a name or an address, nothing more."""
    return 0 < len(value) <= 255 and value.isprintable() and not any(c in value for c in " /@?#\\")


def logout_quietly(session: XenAPI.Session) -> None:
    try:
        session.xenapi.session.logout()
    except Exception:
        pass
    _close_quietly(session)


def _close_quietly(session: XenAPI.Session) -> None:
    try:
        session("close")()
    except Exception:
        pass


def abort(session: XenAPI.Session) -> None:
    transport = getattr(session, "transport", None)
    if isinstance(transport, _Abortable):
        transport.abort()


class SessionPool:
    """At most ``size`` sessions, each used by one thread at a time."""

    def __init__(self, connector: Connector, size: int = 4):
        self.connector = connector
        self._idle: list[XenAPI.Session] = []
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._closed = False

    def add(self, session: XenAPI.Session) -> None:
        with self._lock:
            self._idle.append(session)

    @contextmanager
    def session(self) -> Iterator[XenAPI.Session]:
        if self._closed:
            raise BackendError(f"pool {self.connector.config.name!r}: connection is closed", code="CLOSED")
        with self._slots:
            with self._lock:
                session = self._idle.pop() if self._idle else None
            if session is None:
                session = self.connector.open()
            healthy = True
            try:
                yield session
            except XenAPI.Failure as exc:
                details = [str(d) for d in exc.details or []]
                if details[:1] == ["HOST_IS_SLAVE"] and len(details) > 1:
                    # the master moved (HA failover) and the SDK's re-login hit the old one
                    self.connector.url = replace_host(self.connector.url, details[1])
                    healthy = False
                    raise ConnectionLost(
                        f"pool {self.connector.config.name!r}: the pool master moved to {details[1]}; try again",
                        code="HOST_IS_SLAVE",
                        params=(details[1],),
                        host=self.connector.where,
                    ) from None
                raise
            except BaseException as exc:
                healthy = not is_connection_error(exc)
                raise
            finally:
                self.connector.remember(session)
                if healthy and not self._closed:
                    self.add(session)
                elif healthy:
                    logout_quietly(session)
                else:
                    _close_quietly(session)

    def close(self) -> None:
        self._closed = True
        with self._lock:
            idle, self._idle = self._idle, []
        for session in idle:
            logout_quietly(session)
