"""A host's independent bulk calls made at once when it is at the end of a link.

Over a link every call is a round trip; the bulk read's dozen or so calls (facts, domain list,
stats, pools, networks) do not depend on each other, and libvirt's RPC client multiplexes calls
from several threads on one connection, so they cost about as many round trips as the daemon
serves of one client at once (libvirtd's ``max_client_requests``, 5 by default) allows: 10 ms
RTT, 15 calls: ~0.17 s one after another, ~0.04 s at once. An in-process driver (``test:///``)
serves them one at a time under its lock: there they are made one after another, when asked.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

MAX_THREADS = 16


class Calls:
    """``get(name)`` returns what ``calls[name]()`` returned, or raises what it raised."""

    def __init__(self, calls: dict[str, Callable[[], Any]], *, at_once: bool):
        self._calls = calls
        self._done: dict[str, Future[Any]] = {}
        if at_once and len(calls) > 1:
            # Every call is over when the constructor returns: none runs on after the caller's
            # lock is released.
            with ThreadPoolExecutor(max_workers=min(MAX_THREADS, len(calls)), thread_name_prefix="kvm-bulk") as pool:
                self._done = {name: pool.submit(fn) for name, fn in calls.items()}

    def get(self, name: str) -> Any:
        done = self._done.get(name)
        if done is None:
            done = Future()
            try:
                done.set_result(self._calls[name]())
            except BaseException as exc:
                done.set_exception(exc)
            self._done[name] = done
        return done.result()
