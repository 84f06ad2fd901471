"""A connection's subscriptions (its close callback, the domain events): made as calls of its
first bulk read (``bulkcalls``) rather than in round trips before it, and undone when it closes;
and what libvirt's close reasons mean, in words.

The callbacks themselves are ``HostConn``'s, which owns what they change; here is only how they
are registered.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import libvirt

from poolctl.backends.kvm import bulkcalls

# libvirt's close callback gives a number; the user reads what it means.
_CLOSE_WORDS = {
    libvirt.VIR_CONNECT_CLOSE_REASON_ERROR: "the connection failed (a read or write error)",
    libvirt.VIR_CONNECT_CLOSE_REASON_EOF: "the host closed the connection (its daemon or ssh session ended)",
    libvirt.VIR_CONNECT_CLOSE_REASON_KEEPALIVE: "the host stopped answering keepalives",
}
_CLOSE = "close"

# The registrations as bulk calls: the first ones, their follow-ups (by the call they follow),
# and the names of the event registrations among them (whose answers are the callback ids).
Registrations = tuple[bulkcalls.Named, dict[str, Callable[[Any], bulkcalls.Named]], list[str]]


def registrations(
    c: libvirt.virConnect,
    *,
    on_close: Callable[..., None],
    on_lifecycle: Callable[..., None],
    on_job_completed: Callable[..., None],
    on_migration_iteration: Callable[..., None],
) -> Registrations:
    """The close callback and the domain events (those this libvirt-python has) as the read's
    first calls, the events but the lifecycle one as their follow-ups: the first registration
    sets up libvirt-python's table of them, which is not safe to race."""
    events = [
        (name, getattr(libvirt, event), cb)
        for name, event, cb in (
            ("lifecycle", "VIR_DOMAIN_EVENT_ID_LIFECYCLE", on_lifecycle),
            ("job completed", "VIR_DOMAIN_EVENT_ID_JOB_COMPLETED", on_job_completed),
            ("migration iteration", "VIR_DOMAIN_EVENT_ID_MIGRATION_ITERATION", on_migration_iteration),
        )
        if hasattr(libvirt, event)
    ]
    made: bulkcalls.Named = {
        f"event {name}": functools.partial(_quietly, c.domainEventRegisterAny, None, event, cb, None)
        for name, event, cb in events
    }
    first: bulkcalls.Named = dict(list(made.items())[:1])
    calls: bulkcalls.Named = {_CLOSE: functools.partial(_quietly, c.registerCloseCallback, on_close, None)} | first
    then: dict[str, Callable[[Any], bulkcalls.Named]] = {
        name: functools.partial(_constant, dict(list(made.items())[1:])) for name in first
    }
    return calls, then, list(made)


def callback_ids(got: bulkcalls.Calls, events: list[str]) -> list[int]:
    """The ids of the events registered by the read's calls (``got``), the close callback's
    call made too; a registration the host refused has none."""
    got.get(_CLOSE)
    return [i for i in map(got.get, events) if i is not None]


def unsubscribe(conn: libvirt.virConnect, callback_ids: list[int]) -> None:
    """Every registration undone, each one the host refuses let go: the connection is closing."""
    for cid in callback_ids:
        try:
            conn.domainEventDeregisterAny(cid)
        except libvirt.libvirtError:
            pass
    try:
        conn.unregisterCloseCallback()
    except libvirt.libvirtError:
        pass


def close_words(reason: int) -> str:
    """Why libvirt closed a connection (its close callback's ``reason``), in words."""
    return _CLOSE_WORDS.get(reason, "the connection closed")


def _quietly(register: Callable[..., int], *args: Any) -> int | None:
    """A registration's id, None when the host refused it (the host still loads)."""
    try:
        return register(*args)
    except libvirt.libvirtError:
        return None


def _constant(calls: bulkcalls.Named, _answer: object) -> bulkcalls.Named:
    return calls
