"""Fixed-rate pinger: one probe every `interval` seconds, on absolute deadlines.

Use it on your own asyncio loop (`await pinger.run()`) or in its own daemon
thread (`pinger.start()` ... `pinger.stop()`). Either way probing never blocks
the caller; `stats()` and `samples()` may be called from any thread.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable

from icmplib.exceptions import SocketPermissionError

from poolctl.ping.limits import DEFAULT_INTERVAL, INTERVAL_MIN_S
from poolctl.ping.method import (
    MethodChoice,
    MethodUnavailable,
    check_port,
    detect_method,
    resolve_address,
)
from poolctl.ping.probes import IcmpProber, ProbeSendError, TcpProber
from poolctl.ping.stats import PingStats, Recorder, Sample

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 1.0
DEFAULT_HISTORY = 600


class Pinger:
    """Ping `address` every `interval` s; count replies, losses and the longest gap.

    The address is resolved and the method chosen (and its socket opened) in the
    constructor, so a bad address (AddressError) or an impossible method
    (MethodUnavailable) fails here, synchronously. Host names may need DNS, which
    can block: pass an IP from a UI thread. A Pinger runs once.
    """

    def __init__(
        self,
        address: str,
        *,
        interval: float = DEFAULT_INTERVAL,
        timeout: float = DEFAULT_TIMEOUT,
        port: int | None = None,
        method: str = "auto",
        count: int | None = None,
        history: int = DEFAULT_HISTORY,
        on_sample: Callable[[Sample], None] | None = None,
    ) -> None:
        if not (isinstance(interval, (int, float)) and math.isfinite(interval) and interval >= INTERVAL_MIN_S):
            raise ValueError(f"ping interval must be at least {INTERVAL_MIN_S:g} s, got {interval!r}")
        if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0):
            raise ValueError(f"ping timeout must be a positive number of seconds, got {timeout!r}")
        if count is not None and (not isinstance(count, int) or count < 1):
            raise ValueError(f"ping count must be a positive integer, got {count!r}")
        if not isinstance(history, int) or history < 1:
            raise ValueError(f"ping history must be a positive integer, got {history!r}")
        check_port(port)
        self.address = address
        self.interval = float(interval)
        self.timeout = float(timeout)
        self.count = count
        self.on_sample = on_sample
        self.ip, family = resolve_address(address)
        choice = detect_method(port, method, address)
        self._choice, self._prober = self._open(choice, family, port, method)
        self._rec = Recorder(self.interval, history)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._used = self._running = self._stop_requested = False
        self._drain = True
        self._thread: threading.Thread | None = None
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._stop_fut: asyncio.Future[None] | None = None
        self._abort_fut: asyncio.Future[None] | None = None
        self._idle_fut: asyncio.Future[None] | None = None
        self.error: BaseException | None = None  # what ended a threaded run abnormally

    def _open(
        self, choice: MethodChoice, family: int, port: int | None, requested: str
    ) -> tuple[MethodChoice, IcmpProber | TcpProber]:
        if choice.kind == "tcp":
            assert choice.port is not None
            return choice, TcpProber(self.ip, family, choice.port, self.timeout)
        try:
            return choice, IcmpProber(self.ip, family, privileged=choice.kind == "icmp-privileged")
        except SocketPermissionError:
            if requested == "auto" and choice.kind == "icmp-privileged":
                # Root without CAP_NET_RAW (a restricted container): choose again as
                # if unprivileged; raises MethodUnavailable saying so if nothing fits.
                fallback = detect_method(port, "auto", self.address, raw_refused=True)
                return self._open(fallback, family, port, "fallback")
            raise MethodUnavailable(
                f"cannot ping {self.address}: the kernel refused the {choice.label} socket. "
                "Give a TCP port to probe with TCP connects instead (e.g. --port 22)."
            ) from None

    # -- what the panel shows -------------------------------------------------
    @property
    def method(self) -> str:
        return self._choice.label

    @property
    def method_reason(self) -> str:
        return self._choice.reason

    @property
    def running(self) -> bool:
        return self._running

    def stats(self) -> PingStats:
        return self._rec.snapshot(address=self.address, method=self.method, running=self._running)

    def samples(self) -> list[Sample]:
        """The most recent samples (up to `history`), oldest first, in sequence order."""
        return self._rec.samples()

    # -- asyncio API ----------------------------------------------------------
    async def run(self) -> PingStats:
        """Probe on the running loop until stop() or `count` probes; then drain.

        Draining waits (at most `timeout`) for the replies of probes in flight,
        unless stop(drain=False) was called.
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._used:
                raise RuntimeError("this Pinger has already run; create a new one")
            self._used = self._running = True
            self._loop = loop
            self._stop_fut, self._abort_fut = loop.create_future(), loop.create_future()
            if self._stop_requested:
                self._stop_fut.set_result(None)
        try:
            self._prober.begin(self._resolved, self._rec.note_error)
            await self._probe_loop(loop)
            if self._drain and self._timers:
                self._idle_fut = loop.create_future()
                await asyncio.wait(
                    [self._idle_fut, self._abort_fut], timeout=self.timeout + 1.0, return_when=asyncio.FIRST_COMPLETED
                )
        finally:
            for handle in self._timers.values():
                handle.cancel()
            self._timers.clear()
            await self._prober.aclose()
            self._rec.finish()
            self._running = False
        return self.stats()

    async def _probe_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        assert self._stop_fut is not None
        t0 = time.monotonic()
        slot = seq = 0
        while not self._stop_fut.done() and (self.count is None or seq < self.count):
            # Absolute deadlines: no drift from sleep overshoot accumulating.
            delay = t0 + slot * self.interval - time.monotonic()
            if delay > 0:
                await asyncio.wait([self._stop_fut], timeout=delay)
                continue
            if -delay >= self.interval:
                # Fell a whole interval behind (process stopped, loop starved):
                # resume on the grid instead of bursting the missed probes out.
                slot = math.floor((time.monotonic() - t0) / self.interval)
            self._send(loop, seq)
            seq += 1
            slot += 1

    def _send(self, loop: asyncio.AbstractEventLoop, seq: int) -> None:
        sent_at = time.monotonic()
        self._rec.probe_sent(seq, sent_at)
        try:
            self._prober.send(seq, sent_at)
        except ProbeSendError as exc:
            self._rec.note_error(f"send to {self.ip} failed: {exc}", send=True)
            self._emit(self._rec.resolve(seq, None))
            return
        self._timers[seq] = loop.call_later(self.timeout, self._resolved, seq, None)

    def _resolved(self, seq: int, rtt_ms: float | None) -> None:
        handle = self._timers.pop(seq, None)
        if handle is not None:
            handle.cancel()
        self._emit(self._rec.resolve(seq, rtt_ms))
        if not self._timers and self._idle_fut is not None and not self._idle_fut.done():
            self._idle_fut.set_result(None)

    def _emit(self, samples: list[Sample]) -> None:
        callback = self.on_sample
        if callback is None:
            return
        for sample in samples:
            try:
                callback(sample)
            except Exception:  # a consumer's bug must not stop the measurement
                log.exception("on_sample callback failed for %s", self.address)

    # -- thread API -----------------------------------------------------------
    def start(self) -> Pinger:
        """Run in a daemon thread with its own event loop; returns self."""
        with self._lock:
            if self._used or self._thread is not None:
                raise RuntimeError("this Pinger has already run; create a new one")
            self._thread = threading.Thread(target=self._thread_main, name=f"pinger {self.address}", daemon=True)
        self._thread.start()
        return self

    def _thread_main(self) -> None:
        try:
            asyncio.run(self.run())
        except BaseException as exc:
            self.error = exc
            self._rec.note_error(f"pinger stopped: {exc}")
            log.exception("pinger for %s failed", self.address)

    def stop(self, *, drain: bool = True, timeout: float | None = None) -> PingStats:
        """Stop probing and return the final stats.

        drain=True waits up to `self.timeout` for replies still in flight. In thread
        mode this joins the thread (at most `timeout`, default self.timeout + 5 s);
        in asyncio mode it only signals: await your run() task for the end.
        """
        with self._lock:
            self._stop_requested = True
            if not drain:
                self._drain = False
            loop = self._loop if self._running else None
            never_ran = not self._used and self._thread is None
            self._used = self._used or never_ran
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._on_stop)
            except RuntimeError:
                pass  # the loop just closed: the run is over anyway
        if never_ran:
            self._prober.close()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(self.timeout + 5.0 if timeout is None else timeout)
        return self.stats()

    def _on_stop(self) -> None:
        for fut, wanted in ((self._stop_fut, True), (self._abort_fut, not self._drain)):
            if wanted and fut is not None and not fut.done():
                fut.set_result(None)

    def wait(self, timeout: float | None = None) -> bool:
        """Join the thread (e.g. after a `count`-bounded start()); True when it ended."""
        thread = self._thread
        if thread is None:
            return not self._running
        thread.join(timeout)
        return not thread.is_alive()

    def close(self) -> None:
        """Release the socket of a Pinger that will not run (stop() also does)."""
        self.stop(drain=False)

    def __enter__(self) -> Pinger:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
