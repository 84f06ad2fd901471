"""The API call registry: one decorated function per XAPI call, plus name resolution.

Resolution accepts `Class.method`, the SDK's `Class_method` spelling (XenAPI.py sends
`event_from` because `from` is a Python keyword) and the `Async.` prefix.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from . import errors
from .db import CLASSES

if TYPE_CHECKING:
    from .db import Database
    from .state import PoolState

NAMESPACES: tuple[str, ...] = (*CLASSES, "session", "event", "message", "system")
# longest first so "VM_metrics_get_all" resolves to VM_metrics, not VM
_BY_LENGTH = sorted(NAMESPACES, key=len, reverse=True)
_NO_ASYNC = {"session", "task", "event", "system"}


@dataclass(frozen=True)
class Call:
    name: str
    fn: Callable[..., object]
    params: tuple[str, ...]
    optional: int = 0  # how many trailing params may be left out
    needs_session: bool = True
    async_ok: bool = True

    def check_count(self, method: str, params: list[object]) -> None:
        """MESSAGE_PARAMETER_COUNT_MISMATCH as xapi's generated server sends it: [call, params
        without defaults, params received], neither counting the session (gen_server.ml)."""
        received = len(params) - (1 if self.needs_session else 0)
        if not (len(self.params) - self.optional <= received <= len(self.params)):
            raise errors.parameter_count_mismatch(method, len(self.params) - self.optional, received)


@dataclass
class Context:
    """What a call knows about its caller: the pool's state, session, serving host and task."""

    pool: PoolState
    host: str  # ref of the host whose address received the request
    session: str | None = None
    task: str | None = None
    user_agent: str | None = None  # the request's User-Agent header
    closing: threading.Event = field(default_factory=threading.Event)  # set when the server stops

    @property
    def db(self) -> Database:
        return self.pool.db


REGISTRY: dict[str, Call] = {}
GENERIC: list[Callable[[str, str], Call | None]] = []


F = TypeVar("F", bound=Callable[..., object])


def api(
    name: str, *params: str, optional: int = 0, session: bool = True, async_ok: bool | None = None
) -> Callable[[F], F]:
    cls = name.split(".", 1)[0]

    def deco(fn: F) -> F:
        REGISTRY[name] = Call(
            name, fn, params, optional, session, cls not in _NO_ASYNC if async_ok is None else async_ok
        )
        return fn

    return deco


def canonical(method: str) -> tuple[str, bool]:
    """("Async.VM.start") -> ("VM.start", True); ("event_from") -> ("event.from", False)."""
    is_async = method.startswith("Async.")
    name = method[6:] if is_async else method
    if "." not in name:
        for ns in _BY_LENGTH:
            if name.startswith(ns + "_") and len(name) > len(ns) + 1:
                name = f"{ns}.{name[len(ns) + 1 :]}"
                break
    return name, is_async


def resolve(method: str) -> tuple[Call, bool]:
    name, is_async = canonical(method)
    call = REGISTRY.get(name)
    if call is None and "." in name:
        cls, meth = name.split(".", 1)
        for generic in GENERIC:
            call = generic(cls, meth)
            if call is not None:
                break
    if call is None:
        raise errors.method_unknown(method)
    return call, is_async


def known() -> list[str]:
    """Every call name the simulator answers (registered and generic), for system.listMethods."""
    from . import datamodel

    names = set(REGISTRY)
    for cls in NAMESPACES:
        if cls not in datamodel.classes():
            continue
        for meth in datamodel.messages(cls):
            name = f"{cls}.{meth}"
            if name in names:
                continue
            for generic in GENERIC:
                if generic(cls, meth) is not None:
                    names.add(name)
                    break
    return sorted(names)
