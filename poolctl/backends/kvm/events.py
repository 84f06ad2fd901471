"""What travels on a KVM pool's event queue to its watcher thread, one class per kind.

libvirt's callbacks, power operations and migrations only put these on the queue: all
loading and diffing happens on the watcher's thread, under the pool's lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from poolctl.backends.kvm.details import Details


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
class DetailsRead:
    """Domains' own calls, read in the background: for each, (uuid, details or None when the
    domain is gone, the stamp taken before the read), as ``HostConn.apply`` takes them."""

    uri: str
    reads: tuple[tuple[str, Details | None, int], ...]
    taken: threading.Event  # set once applied: the reader sends its next batch no sooner


@dataclass(frozen=True, slots=True)
class DetailsDone:
    """A host's background read of domains, begun at ``stamp``, has ended: ``attempted`` are
    the domains it tried (one that failed waits for the next refresh rather than looping)."""

    uri: str
    stamp: int
    attempted: frozenset[str]


@dataclass(frozen=True, slots=True)
class Refresh:
    """The periodic bulk refresh of every live host."""


@dataclass(frozen=True, slots=True)
class Emit:
    """An inventory read found news: wake the watcher so it delivers the changes."""


@dataclass(frozen=True, slots=True)
class Stop:
    """Wake the watcher so it sees it is stopped."""


# about the host at ``uri``
HostEvent = DomainChanged | HostLost | HostReconnected | HostStale | DetailsRead | DetailsDone
Event = HostEvent | Refresh | Emit | Stop
Notify = Callable[[Event], None]
