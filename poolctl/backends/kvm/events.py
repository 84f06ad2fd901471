"""What travels on a KVM pool's event queue to its watcher thread, one class per kind.

libvirt's callbacks, power operations and migrations only put these on the queue: all
loading and diffing happens on the watcher's thread, under the pool's lock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DomainChanged:
    """A domain to re-read: libvirt's lifecycle event, or our own after a power operation
    (then ``event`` and ``detail`` are None), in case libvirt's event gets lost."""

    uri: str
    uuid: str
    event: int | None = None
    detail: int | None = None


@dataclass(frozen=True, slots=True)
class HostLost:
    """The connection to a host closed or failed (a stale report is checked and dropped)."""

    uri: str
    why: str


@dataclass(frozen=True, slots=True)
class HostReconnected:
    uri: str


@dataclass(frozen=True, slots=True)
class HostStale:
    """A host's caches to reload: a migration started or ended there."""

    uri: str


@dataclass(frozen=True, slots=True)
class Refresh:
    """The periodic bulk refresh of every live host."""


@dataclass(frozen=True, slots=True)
class Emit:
    """An inventory read found news: wake the watcher so it delivers the changes."""


@dataclass(frozen=True, slots=True)
class Stop:
    """Wake the watcher so it sees it is stopped."""


HostEvent = DomainChanged | HostLost | HostReconnected | HostStale  # about the host at ``uri``
Event = HostEvent | Refresh | Emit | Stop
Notify = Callable[[Event], None]
