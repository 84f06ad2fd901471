"""A host's first open, started before the pool is: ``poolctl.preload`` starts one for each host
of each KVM pool in the config file as soon as the command is known, before the config is
validated (pydantic and the backends' modules, ~0.2 s) and before the TUI is imported; the
host's ``HostConn`` takes it over when its pool connects (``claim``), if it was started with
the settings the validated config gives. Over a link an open is mostly waiting (the daemon's
answer, its parse of a test-driver host), so it overlaps poolctl's own start instead of
following it.

Nothing of the pool's runs before it is validated: an open that asks for credentials waits
until it is claimed, then asks the pool's own callback (its ``password_command``). An open no
pool claims (a table that validated to other settings, a pool the command did not load) is
closed by the next command's ``discard_all`` in the same process, or left to its exit. Like
``opening`` this imports libvirt and the standard library only.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import libvirt

from poolctl.backends.kvm.eventloop import ensure_event_loop
from poolctl.backends.kvm.opening import CRED_TYPES, Opener, OpenSettings, end_ssh, open_conn


class _Early:
    """One open under way in its own thread, until a pool takes it (``take``) or it is discarded."""

    def __init__(self, uri: str, settings: OpenSettings):
        self.uri = uri
        self.settings = settings
        self._claimed = threading.Event()
        self._auth: list[Any] | None = None  # the claiming pool's auth callback, once claimed
        self._cancel = threading.Event()
        self._done = threading.Event()
        self._result: tuple[libvirt.virConnect, int | None] | None = None
        self._closing = threading.Lock()  # a discard and the open's end may both close it
        self._error: BaseException | None = None
        host = urlsplit(uri).hostname or "local"
        threading.Thread(target=self._run, name=f"libvirt-early-open-{host}", daemon=True).start()

    def _run(self) -> None:
        try:
            self._result = open_conn(self.uri, [CRED_TYPES, self._credentials, None], self.settings, self._cancel)
        except BaseException as err:  # handed to the claiming thread
            self._error = err
        finally:
            self._done.set()
        if self._cancel.is_set():  # discarded while it opened
            self._close()

    def _credentials(self, creds: list[list[Any]], _opaque: object) -> int:
        if not self._claimed.wait(self.settings.timeout_s) or self._auth is None:
            return -1  # nobody took it (or it was discarded): no credentials of an unvalidated pool
        callback, state = self._auth[1], self._auth[2]
        return int(callback(creds, state))

    def take(self, auth: list[Any], cancel: threading.Event | None) -> tuple[libvirt.virConnect, int | None]:
        """An ``opening.Opener``: the claiming pool's auth list and cancel event; raises what
        ``open_conn`` raised."""
        self._auth = auth
        self._claimed.set()
        while not self._done.wait(0.05):
            if cancel is not None and cancel.is_set():
                self._cancel.set()  # open_conn abandons it (its ssh ended) and raises OpenTimedOut
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def discard(self) -> None:
        self._cancel.set()
        self._claimed.set()  # an open waiting for credentials is refused them
        if self._done.is_set():
            self._close()

    def _close(self) -> None:
        with self._closing:
            result, self._result = self._result, None
        if result is None:
            return
        conn, ssh_pid = result
        try:
            held = conn.close()
        except libvirt.libvirtError:
            held = 0
        if held > 0 and ssh_pid is not None:
            end_ssh(ssh_pid)


_lock = threading.Lock()
_waiting: dict[str, list[_Early]] = {}


def start(uri: str, settings: OpenSettings) -> None:
    ensure_event_loop()  # before the first open: it gets the keepalives and events
    early = _Early(uri, settings)
    with _lock:
        _waiting.setdefault(uri, []).append(early)


def claim(uri: str, settings: OpenSettings) -> Opener | None:
    """The open of ``uri`` started early with the same settings, taken off the list (once), or
    None: the caller opens the host itself."""
    with _lock:
        waiting = _waiting.get(uri, [])
        for early in waiting:
            if early.settings == settings:
                waiting.remove(early)
                return early.take
    return None


def discard_all() -> None:
    with _lock:
        left = [e for opens in _waiting.values() for e in opens]
        _waiting.clear()
    for early in left:
        early.discard()


def start_pool(table: Mapping[str, Any], config_dir: Path) -> None:
    """The opens of a ``[[pool]]`` table of backend "kvm", as read from the file (not validated
    yet): each URI with the settings the pool will have if the table is what it seems. A table
    that is not (no list of URIs, a setting of the wrong type) starts nothing: its pool opens
    its hosts itself, or the config says what is wrong with it."""
    uris = table.get("uris")
    timeout = table.get("connect_timeout_s", OpenSettings().timeout_s)
    known_hosts = table.get("known_hosts", "")
    if not isinstance(uris, list) or not all(isinstance(u, str) for u in uris):
        return
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not isinstance(known_hosts, str):
        return
    if known_hosts:  # as KvmConfig reads it: ~ expanded, relative to the config file's folder
        path = Path(known_hosts).expanduser()
        known_hosts = str(path if path.is_absolute() else config_dir / path)
    settings = OpenSettings(timeout_s=float(timeout), known_hosts=known_hosts)
    for uri in dict.fromkeys(uris):
        try:
            if urlsplit(uri).password is not None:
                continue  # refused by the config: never sent anywhere
        except ValueError:
            continue
        start(uri, settings)
