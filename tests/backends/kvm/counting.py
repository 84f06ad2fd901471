"""Counting the libvirt calls a backend makes: a proxy around the real connection and the
domain, storage and network objects it hands out. Every call still goes to libvirt; only the
accessors libvirt answers from the object itself (no round trip) are not counted."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import libvirt

# Answered from the object's own fields: no round trip to the driver or the daemon.
LOCAL = frozenset({"name", "UUIDString", "UUID", "ID", "connect", "c_pointer"})
_REAL_OPEN = libvirt.openAuth  # taken at import: a second counter must not count through the first
_WRAPPED = (libvirt.virConnect, libvirt.virDomain, libvirt.virStoragePool, libvirt.virNetwork, libvirt.virStorageVol)


class Calls:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.in_flight = 0
        self.most_in_flight = 0  # the most calls that were under way at once
        self._lock = threading.Lock()

    def add(self, name: str) -> None:
        with self._lock:
            self.counts[name] += 1
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)

    def done(self) -> None:
        with self._lock:
            self.in_flight -= 1

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.counts)


def _unwrap(value: Any) -> Any:
    if isinstance(value, Counted):
        return value._real
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


class Counted:
    def __init__(self, real: Any, calls: Calls, kind: str):
        self._real = real
        self._calls = calls
        self._kind = kind

    def _wrap(self, value: Any) -> Any:
        if isinstance(value, _WRAPPED):
            return Counted(value, self._calls, type(value).__name__.removeprefix("vir"))
        if isinstance(value, list):
            return [self._wrap(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self._wrap(v) for v in value)
        return value

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._real, name)
        if not callable(attr) or name in LOCAL:
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self._calls.add(f"{self._kind}.{name}")
            try:
                return self._wrap(attr(*map(_unwrap, args), **{k: _unwrap(v) for k, v in kwargs.items()}))
            finally:
                self._calls.done()

        return call


def counting_open(calls: Calls):
    """A stand-in for ``libvirt.openAuth`` that opens for real and counts what follows."""

    def open_auth(uri: str, auth: list[Any], flags: int = 0) -> Counted:
        calls.add("openAuth")
        try:
            return Counted(_REAL_OPEN(uri, auth, flags), calls, "Connect")
        finally:
            calls.done()

    return open_auth
