"""Samples, the stats snapshot, and the thread-safe recorder that keeps them.

Probes resolve out of order (a reply arrives at once, a loss only after the
timeout), so the recorder holds resolved probes until every earlier one has
resolved and releases samples strictly in sequence order. Stats are computed on
that ordered stream, which keeps them deterministic.

Gap definition (``longest_gap_s``): measured between *send times* of answered
probes, so it has the probe interval's resolution and does not depend on RTT.
- Between two consecutive answered probes: ``sent_at(next) - sent_at(prev)``;
  with no loss this is about one interval, and k lost probes in between make it
  about (k + 1) intervals.
- Before the first reply it counts from the run's first probe.
- While replies have stopped (the latest released probe was lost) the open stretch
  counts up to the latest lost probe's send time plus one interval, i.e. what the
  gap becomes if the very next probe is answered. ``current_gap_s`` shows that
  open stretch (0 when the latest probe was answered).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Sample:
    seq: int
    sent_at: float  # time.monotonic() when the probe was sent
    rtt_ms: float | None  # None = lost (no reply within the timeout, or send failed)

    @property
    def lost(self) -> bool:
        return self.rtt_ms is None


@dataclass(frozen=True, slots=True)
class PingStats:
    address: str
    method: str
    interval: float
    running: bool
    sent: int  # probes sent (or attempted: a failed send counts as sent and lost)
    received: int
    lost: int
    in_flight: int  # sent, not yet answered nor timed out
    send_errors: int
    last_error: str | None
    last_rtt_ms: float | None
    min_rtt_ms: float | None
    avg_rtt_ms: float | None
    max_rtt_ms: float | None
    longest_gap_s: float
    current_gap_s: float
    loss_pct: float  # lost / (received + lost) * 100; 0.0 before anything resolved
    elapsed_s: float  # since the first probe (until stop)


_PENDING = object()


class Recorder:
    """Collects probe outcomes; every method is safe to call from any thread."""

    def __init__(self, interval: float, history: int = 600) -> None:
        self._interval = interval
        self._lock = threading.Lock()
        self._ring: deque[Sample] = deque(maxlen=history)
        self._pending: dict[int, tuple[float, object]] = {}
        self._next_release = 0
        self._sent = self._received = self._lost = self._send_errors = 0
        self._last_error: str | None = None
        self._last_rtt: float | None = None
        self._min_rtt: float | None = None
        self._max_rtt: float | None = None
        self._rtt_sum = 0.0
        self._start: float | None = None
        self._end: float | None = None
        self._last_reply_sent: float | None = None
        self._longest_gap = 0.0  # of the stretches a reply has closed
        self._current_gap = 0.0

    def probe_sent(self, seq: int, sent_at: float) -> None:
        with self._lock:
            if self._start is None:
                self._start = sent_at
                self._next_release = seq
            self._pending[seq] = (sent_at, _PENDING)
            self._sent += 1

    def resolve(self, seq: int, rtt_ms: float | None) -> list[Sample]:
        """Record the outcome of probe `seq`; return the samples now released in order.

        A second outcome for the same probe (a late reply after the timeout, a
        duplicate) is ignored: the first one wins.
        """
        with self._lock:
            entry = self._pending.get(seq)
            if entry is None or entry[1] is not _PENDING:
                return []
            self._pending[seq] = (entry[0], rtt_ms)
            released = []
            while True:
                head = self._pending.get(self._next_release)
                if head is None or head[1] is _PENDING:
                    break
                del self._pending[self._next_release]
                sample = Sample(self._next_release, head[0], head[1])  # type: ignore[arg-type]
                self._account(sample)
                self._ring.append(sample)
                released.append(sample)
                self._next_release += 1
            return released

    def note_error(self, message: str, *, send: bool = False) -> None:
        with self._lock:
            self._last_error = message
            if send:
                self._send_errors += 1

    def finish(self, at: float | None = None) -> None:
        with self._lock:
            self._end = time.monotonic() if at is None else at

    @property
    def in_flight(self) -> int:
        with self._lock:
            return sum(1 for _, rtt in self._pending.values() if rtt is _PENDING)

    def _account(self, s: Sample) -> None:
        base = self._last_reply_sent if self._last_reply_sent is not None else self._start
        assert base is not None
        if s.rtt_ms is None:
            self._lost += 1
            # Provisional: the reply that closes the stretch replaces it with the measured gap.
            self._current_gap = s.sent_at + self._interval - base
            return
        self._received += 1
        self._longest_gap = max(self._longest_gap, s.sent_at - base)
        self._current_gap = 0.0
        self._last_reply_sent = s.sent_at
        self._last_rtt = s.rtt_ms
        self._rtt_sum += s.rtt_ms
        self._min_rtt = s.rtt_ms if self._min_rtt is None else min(self._min_rtt, s.rtt_ms)
        self._max_rtt = s.rtt_ms if self._max_rtt is None else max(self._max_rtt, s.rtt_ms)

    def samples(self) -> list[Sample]:
        with self._lock:
            return list(self._ring)

    def snapshot(self, *, address: str, method: str, running: bool) -> PingStats:
        with self._lock:
            resolved = self._received + self._lost
            end = self._end if self._end is not None else time.monotonic()
            return PingStats(
                address=address,
                method=method,
                interval=self._interval,
                running=running,
                sent=self._sent,
                received=self._received,
                lost=self._lost,
                in_flight=sum(1 for _, rtt in self._pending.values() if rtt is _PENDING),
                send_errors=self._send_errors,
                last_error=self._last_error,
                last_rtt_ms=self._last_rtt,
                min_rtt_ms=self._min_rtt,
                avg_rtt_ms=self._rtt_sum / self._received if self._received else None,
                max_rtt_ms=self._max_rtt,
                longest_gap_s=max(self._longest_gap, self._current_gap),
                current_gap_s=self._current_gap,
                loss_pct=100.0 * self._lost / resolved if resolved else 0.0,
                elapsed_s=max(0.0, end - self._start) if self._start is not None else 0.0,
            )
