"""A host's independent bulk calls made at once when it is at the end of a link.

Over a link every call is a round trip; the bulk read's dozen or so calls (facts, domain list,
stats, pools, networks) do not depend on each other, and libvirt's RPC client multiplexes calls
from several threads on one connection, so they cost about as many round trips as the daemon
serves of one client at once (libvirtd's ``max_client_requests``, 5 by default) allows: 10 ms
RTT, 15 calls: ~0.17 s one after another, ~0.04 s at once. A call that needs another's answer
(a pool's definition needs the pool list) is a follow-up: made as soon as that answer is in,
queued behind the calls still waiting, not in a round of its own after all of them. An
in-process driver (``test:///``) serves calls one at a time under its lock: there they are made
one after another, when asked.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

MAX_THREADS = 16

Named = dict[str, Callable[[], Any]]
# a call's follow-ups: from its answer, the further calls (by name) that answer makes possible
FollowUps = Mapping[str, Callable[[Any], Named]]


class Calls:
    """``get(name)`` returns what ``calls[name]()`` returned, or raises what it raised; a
    follow-up's name is known once its call's answer is in (``get`` that call first)."""

    def __init__(self, calls: Named, *, at_once: bool, follow: FollowUps | None = None, threads: Threads | None = None):
        self._calls: Named = {}
        self._follow = dict(follow or {})
        self._done: dict[str, Future[Any]] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._submitted: list[Future[Any]] = []
        self._lock = threading.Lock()
        if not (at_once and (len(calls) > 1 or self._follow)):
            self._add(calls)
            return
        # Every call, follow-ups included, is over when the constructor returns: none runs on
        # after the caller's lock is released.
        if threads is not None and (pool := threads.pool()) is not None:
            self._run(pool, calls)
        else:
            with ThreadPoolExecutor(max_workers=MAX_THREADS, thread_name_prefix="kvm-bulk") as pool:
                self._run(pool, calls)
        self._pool = None

    def _run(self, pool: ThreadPoolExecutor, calls: Named) -> None:
        self._pool = pool
        self._add(calls)
        seen = 0
        while True:  # a call submits its follow-ups before it ends
            with self._lock:
                batch, seen = self._submitted[seen:], len(self._submitted)
            if not batch:
                break
            wait(batch)

    def _add(self, more: Named) -> None:
        for name, fn in more.items():
            if self._pool is None:
                self._calls[name] = fn  # made when asked
                continue
            then = self._follow.get(name)
            done = self._pool.submit(fn if then is None else functools.partial(self._and_then, fn, then))
            with self._lock:
                self._done[name] = done
                self._submitted.append(done)

    def _and_then(self, fn: Callable[[], Any], then: Callable[[Any], Named]) -> Any:
        result = fn()
        self._add(then(result))
        return result

    def get(self, name: str) -> Any:
        done = self._done.get(name)
        if done is None:
            done = Future()
            try:
                result = self._calls[name]()
                if (then := self._follow.get(name)) is not None:
                    self._add(then(result))
                done.set_result(result)
            except BaseException as exc:
                done.set_exception(exc)
            self._done[name] = done
        return done.result()


class Threads:
    """A connection's threads for its bulk calls, all started in the background (``start``) while
    the connection opens. Started by the first bulk read instead, one by one, each start waits
    for the interpreter's lock: up to its 5 ms switch interval each while the TUI draws its first
    frame, 16 of them before the last call is sent (40-80 ms measured at 10 ms RTT)."""

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._closed = False
        # A worker is started for each task while none is idle: tasks that wait for each other
        # start every one of them; ``close`` releases them at once (a host that failed to open).
        self._gate = threading.Barrier(MAX_THREADS)

    def start(self) -> None:
        threading.Thread(target=self._start, name="kvm-bulk-start", daemon=True).start()

    def _start(self) -> None:
        pool = ThreadPoolExecutor(max_workers=MAX_THREADS, thread_name_prefix="kvm-bulk")
        with self._lock:
            if self._closed:
                return
            self._pool = pool
        try:
            started = [pool.submit(self._gate.wait, 1.0) for _ in range(MAX_THREADS)]
        except RuntimeError:  # closed meanwhile, or the interpreter is exiting
            self._gate.abort()
            return
        wait(started)
        self._ready.set()

    def pool(self, wait_s: float = 1.0) -> ThreadPoolExecutor | None:
        """The started pool; None when it is not there (closed, or not ready within ``wait_s``:
        the caller makes its own)."""
        if not self._ready.wait(wait_s):
            return None
        with self._lock:
            return None if self._closed else self._pool

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        self._gate.abort()
        if pool is not None:
            pool.shutdown(wait=False)
