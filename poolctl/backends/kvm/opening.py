"""Opening a libvirt connection within a deadline, and never leaving an ssh child behind.

libvirt's ``+ssh`` transport runs ``ssh`` as a child of this process and has no timeout of its
own: a host that accepts TCP and never sends a banner holds ``virConnectOpenAuth`` for good.
Each open through ssh therefore runs ``command=`` pointed at a small wrapper written for that
attempt: it records ssh's pid, then execs ssh (or the URI's own ``command=``) with
``ConnectTimeout``, ``ServerAlive*`` and, when configured, ``UserKnownHostsFile``. The open runs
on a thread of its own; past the deadline the attempt is abandoned and its ssh ended, which
also returns libvirt's call. ``+libssh`` runs in this process: it is given ``known_hosts=`` and
its abandoned call is left to end (its connection closed if it ever opens).

``open_host`` is a host's whole open: the credentials given once each, the deadline, keepalives,
and a failure worded by what it means (``openfail``). This module is imported before the config
is validated (``poolctl.preload`` starts the first opens there, ``early``): it imports libvirt
and the standard library only, and the failures' words (pydantic behind them) where one is worded.
"""

from __future__ import annotations

import atexit
import os
import shlex
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import libvirt

from poolctl.backends.kvm.eventloop import ensure_event_loop

if TYPE_CHECKING:
    from poolctl.backends.base import BackendError

SERVER_ALIVE_S = 5  # ssh's own keepalive: 3 missed answers end a dead session
SERVER_ALIVE_COUNT = 3


class OpenSettings(NamedTuple):  # not a dataclass: that module costs ~7 ms before the first open
    timeout_s: float = 15.0  # the whole open: TCP, ssh, authentication, libvirt's handshake
    known_hosts: str = ""  # a known_hosts file for both ssh transports; "" = ssh's own default


def transport(uri: str) -> str:
    """'ssh', 'libssh', 'tcp', 'tls', 'unix', ... (libvirt's ``driver+transport``), '' for local."""
    scheme = urlsplit(uri).scheme
    return scheme.split("+", 1)[1] if "+" in scheme else ""


class _Attempt:
    """One open through OpenSSH: its private directory with the wrapper and ssh's pid."""

    def __init__(self, uri: str, settings: OpenSettings):
        import tempfile  # an OpenSSH open only: ~4 ms with shutil, before the first open otherwise

        self.dir = Path(tempfile.mkdtemp(prefix="poolctl-ssh-"))
        parts = urlsplit(uri)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        query.setdefault("no_tty", "1")  # ssh must never prompt on the terminal the TUI owns
        ssh = query.get("command") or "ssh"
        opts = [
            f"ConnectTimeout={max(1, round(settings.timeout_s))}",
            f"ServerAliveInterval={SERVER_ALIVE_S}",
            f"ServerAliveCountMax={SERVER_ALIVE_COUNT}",
        ]
        if settings.known_hosts:
            opts.append(f"UserKnownHostsFile={settings.known_hosts}")
        args = " ".join(f"-o {shlex.quote(o)}" for o in opts)
        self.pidfile = self.dir / "pid"
        # ssh's own words, whole: libvirt keeps only the first KiB of them (a changed host key's
        # banner with long paths came back as "Value too large for defined data type").
        self.errfile = self.dir / "stderr"
        wrapper = self.dir / "ssh"
        # libvirt runs the command with a scrubbed environment: everything it needs is in here.
        wrapper.write_text(
            f"#!/bin/sh\necho $$ > {shlex.quote(str(self.pidfile))}\n"
            f'exec {shlex.quote(ssh)} {args} "$@" 2>>{shlex.quote(str(self.errfile))}\n'
        )
        wrapper.chmod(0o700)
        query["command"] = str(wrapper)
        self.uri = urlunsplit(parts._replace(query=urlencode(query, safe="/")))

    def pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def end_child(self) -> None:
        """Ends the ssh this attempt started (its pid: it may have been reaped and reused only
        once libvirt's call returned, and this runs before that)."""
        pid = self.pid()
        if pid is not None:
            end_ssh(pid)

    def said(self) -> str:
        try:
            return self.errfile.read_text(errors="replace")[-4096:]
        except OSError:
            return ""

    def remove(self) -> None:
        import shutil

        shutil.rmtree(self.dir, ignore_errors=True)


def end_ssh(pid: int) -> None:
    """Kill ``pid`` if it is still an ssh child of this process (never a reused pid)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return
    name, rest = stat.split("(", 1)[1].rsplit(")", 1)
    if int(rest.split()[1]) != os.getpid() or name != "ssh":
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


_live: set[_Attempt] = set()
_live_lock = threading.Lock()


@atexit.register
def _end_all() -> None:
    """Quitting with an open still under way: its ssh goes with us."""
    with _live_lock:
        attempts = list(_live)
    for attempt in attempts:
        attempt.end_child()
        attempt.remove()


def prepared_uri(uri: str, settings: OpenSettings) -> str:
    """The URI as opened, but for OpenSSH's wrapper (added per attempt by ``open_conn``)."""
    if transport(uri) == "libssh" and settings.known_hosts:
        parts = urlsplit(uri)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        query.setdefault("known_hosts", settings.known_hosts)
        return urlunsplit(parts._replace(query=urlencode(query, safe="/")))
    return uri


class OpenTimedOut(Exception):
    """The open did not finish within the deadline (its ssh child has been ended)."""


class OpenFailed(Exception):
    """libvirt's error, and what ssh wrote to its stderr ("" when no OpenSSH ran)."""

    def __init__(self, error: libvirt.libvirtError, ssh_said: str):
        super().__init__(str(error))
        self.error = error
        self.ssh_said = ssh_said


def open_conn(
    uri: str, auth: list[Any], settings: OpenSettings, cancel: threading.Event | None = None
) -> tuple[libvirt.virConnect, int | None]:
    """``libvirt.openAuth`` of ``uri`` within ``settings.timeout_s``; raises ``OpenFailed``
    (libvirt's error and ssh's words) or ``OpenTimedOut`` (also when ``cancel`` is set first)."""
    uri = prepared_uri(uri, settings)
    attempt = _Attempt(uri, settings) if transport(uri) == "ssh" else None
    if attempt is not None:
        uri = attempt.uri
        with _live_lock:
            _live.add(attempt)
    done = threading.Event()
    lock = threading.Lock()
    box: dict[str, Any] = {"abandoned": False}

    def run() -> None:
        try:
            conn = libvirt.openAuth(uri, auth, 0)
        except libvirt.libvirtError as err:
            box["error"] = err
            conn = None
        except BaseException as err:  # handed to the caller's thread
            box["error"] = err
            conn = None
        with lock:
            if box["abandoned"] and conn is not None:
                _close_quietly(conn)
            else:
                box["conn"] = conn
            done.set()
        if attempt is not None and box["abandoned"]:
            _forget(attempt)

    threading.Thread(target=run, name=f"libvirt-open-{urlsplit(uri).hostname or 'local'}", daemon=True).start()
    _wait(done, settings.timeout_s, cancel)
    with lock:
        if not done.is_set():
            box["abandoned"] = True
    if box["abandoned"]:
        if attempt is not None:
            attempt.end_child()  # libvirt's call returns once its ssh is gone
            done.wait(2)
            if done.is_set():
                _forget(attempt)
        raise OpenTimedOut()
    said = attempt.said() if attempt is not None else ""
    pid = attempt.pid() if attempt is not None else None
    if attempt is not None:
        _forget(attempt)
    if isinstance(box.get("error"), libvirt.libvirtError):
        raise OpenFailed(box["error"], said)
    if "error" in box:
        raise box["error"]
    conn = box["conn"]
    assert conn is not None
    return conn, pid


def _wait(done: threading.Event, timeout_s: float, cancel: threading.Event | None) -> None:
    if cancel is None:
        done.wait(timeout_s)
        return
    left = timeout_s
    while left > 0 and not done.is_set() and not cancel.is_set():
        done.wait(min(0.1, left))
        left -= 0.1


def _forget(attempt: _Attempt) -> None:
    with _live_lock:
        _live.discard(attempt)
    attempt.remove()


def _close_quietly(conn: libvirt.virConnect) -> None:
    try:
        conn.close()
    except libvirt.libvirtError:
        pass


# --- A host's open: credentials, keepalives, what a failure means ------------------------------

Credentials = Callable[[], tuple[str, str]]  # (user, password), asked for when the host asks
Opener = Callable[[list[Any], threading.Event | None], tuple[libvirt.virConnect, int | None]]
_ASKED_AGAIN = -1  # in an open's set of credentials asked for: one was asked for twice
CRED_TYPES = [libvirt.VIR_CRED_AUTHNAME, libvirt.VIR_CRED_PASSPHRASE, libvirt.VIR_CRED_NOECHOPROMPT]


def open_host(
    uri: str,
    settings: OpenSettings,
    credentials: Credentials,
    cancel: threading.Event | None = None,
    opener: Opener | None = None,
) -> tuple[libvirt.virConnect, int | None]:
    """A connection to the host at ``uri`` and the pid of its ssh child (None without OpenSSH);
    raises the failure worded for the user (``ConnectionLost``, ``AuthenticationError``, ...).
    ``opener``: an open already under way to take over (``early.claim``), else ``open_conn``."""
    ensure_event_loop()
    failed: list[str] = []  # why our credentials could not be given, if that happened
    asked: set[int] = set()
    auth = [CRED_TYPES, lambda creds, state: give_credentials(credentials, creds, state), (failed, asked)]
    try:
        if opener is not None:
            conn, ssh_pid = opener(auth, cancel)
        else:
            conn, ssh_pid = open_conn(uri, auth, settings, cancel)
    except OpenTimedOut:
        from poolctl.backends.kvm.openfail import timed_out

        raise timed_out(uri, settings.timeout_s) from None
    except OpenFailed as err:
        raise _open_failure(uri, settings, err, failed, asked) from None
    if not urlsplit(uri).scheme.startswith("test"):
        try:
            # 5 s interval, 3 misses: a dead host shows LOST within ~20 s.
            conn.setKeepAlive(5, 3)
        except libvirt.libvirtError:
            pass
    return conn, ssh_pid


def _open_failure(
    uri: str, settings: OpenSettings, err: OpenFailed, failed: list[str], asked: set[int]
) -> BackendError:
    from poolctl.backends.base import AuthenticationError
    from poolctl.backends.kvm.openfail import classify, where

    if failed:
        return AuthenticationError(f"host {where(uri)[0]} ({uri}): {failed[0]}", host=uri)
    said = "the password (or key passphrase) was refused" if _ASKED_AGAIN in asked else err.ssh_said
    return classify(uri, err.error, settings.timeout_s, said)


def give_credentials(credentials: Credentials, creds: list[list[Any]], state: tuple[list[str], set[int]]) -> int:
    """libvirt's auth callback: ``creds`` filled from ``credentials()``; 0, or -1 to fail the open.

    Each kind of credential is given once per open: libvirt's libssh transport asks for the
    password again after every refusal, and handing the same one over forever is a hang once
    the server has hung up ("Too many authentication failures")."""
    failed, asked = state
    kinds = {cred[0] for cred in creds}
    if kinds & asked - {libvirt.VIR_CRED_AUTHNAME}:
        asked.add(_ASKED_AGAIN)
        return -1
    asked.update(kinds)
    # An exception here (a failing password_command) would be printed over the screen
    # by libvirt-python and reach open() only as libvirt's "authentication failed".
    try:
        user, password = credentials()
    except Exception as err:
        failed.append(str(err))
        return -1
    for cred in creds:
        if cred[0] == libvirt.VIR_CRED_AUTHNAME:
            cred[4] = user
        elif cred[0] in (libvirt.VIR_CRED_PASSPHRASE, libvirt.VIR_CRED_NOECHOPROMPT):
            cred[4] = password
    return 0
