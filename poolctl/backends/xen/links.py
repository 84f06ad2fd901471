"""Cross-pool links: the other Xen pools a pool moves VMs to (``Backend.link_pool``), the one a
move names (``MigrationOptions.to_pool``), the ``host.migrate_receive`` map that pool's own
connection gives for a move to one of its hosts, and refs named across both pools. The disk and
NIC maps themselves are cross_pool.py's."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol, TypeVar

import XenAPI

from poolctl.backends.base import Backend, OperationRefused, Unsupported
from poolctl.backends.xen.config import XenConfig
from poolctl.backends.xen.connection import Connector
from poolctl.backends.xen.errors import XapiErrors
from poolctl.backends.xen.storage_motion import receive
from poolctl.backends.xen.translate import Raw
from poolctl.backends.xen.words import Namer, refusal
from poolctl.model import MigrationOptions

T = TypeVar("T")


class XenPool(Protocol):
    """What the pre-checks and the moves between pools ask of a Xen backend (XenBackend is one):
    its pooled sessions, its names for refs, its live tables (the event loop keeps them)."""

    config: XenConfig
    connector: Connector
    errors: XapiErrors
    _raw: Raw
    _raw_lock: threading.Lock

    def _call(self, doing: str, fn: Callable[[XenAPI.Session], T]) -> T: ...

    def _name_of(self, ref: str) -> str: ...


def not_xen(owner: XenPool, other: Backend) -> Unsupported:
    return Unsupported(
        f"pool {owner.config.name!r}: a Xen pool moves VMs only to another Xen pool, "
        f"not to {other.config.name!r} ({other.NAME})",
        code="CROSS_BACKEND",
    )


class Links:
    """The pools ``owner`` moves VMs to, by their config names."""

    def __init__(self, owner: XenPool) -> None:
        self.owner = owner
        self._pools: dict[str, XenPool] = {}

    def add(self, other: XenPool) -> None:
        owner = self.owner
        if other is owner or other.config.name == owner.config.name:
            raise Unsupported(f"pool {owner.config.name!r}: a pool is not linked to itself", code="SAME_POOL")
        self._pools[other.config.name] = other

    def target(self, options: MigrationOptions) -> XenPool:
        """The pool whose host ``options`` moves to: the owner, or the linked pool it names."""
        owner = self.owner
        if options.to_pool is None or options.to_pool == owner.config.name:
            return owner
        target = self._pools.get(options.to_pool)
        if target is None:
            raise Unsupported(
                f"pool {owner.config.name!r}: pool {options.to_pool!r} is not linked as a destination "
                "(Backend.link_pool)",
                code="POOL_NOT_LINKED",
            )
        return target


def named(pool: XenPool, target: XenPool) -> Namer:
    """Refs of ``pool`` or of ``target`` -> names (the other pool's prefixed with it)."""

    def name_of(ref: str) -> str:
        mine = pool._name_of(ref)
        if mine != ref or target is pool:
            return mine
        theirs = target._name_of(ref)
        return theirs if theirs == ref else f"{target.config.name}/{theirs}"

    return name_of


def receive_migration(pool: XenPool, host: str, network: str | None) -> dict[str, str]:
    """``host.migrate_receive`` on ``pool`` for a move to ``host`` over ``network`` (the host's
    management network when None): the map ``VM.migrate_send`` takes. Its session id is
    remembered as a secret of ``pool`` (and by the caller of its own)."""

    def run(session: XenAPI.Session) -> dict[str, str]:
        x = session.xenapi
        try:
            return receive(x, host, network)
        except XenAPI.Failure as exc:
            code, params = pool.errors.parts(exc)
            raise OperationRefused(
                refusal(code, params, "the VM", "migrate", pool._name_of),
                code=code,
                params=params,
                host=pool.connector.where,
            ) from None

    dest = pool._call(f"preparing host {pool._name_of(host)} to receive a migration", run)
    pool.connector.keep_secret(str(dest.get("session_id", "")))
    return dest
