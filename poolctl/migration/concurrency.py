"""How many moves run at once: ``--batch N`` (a constant) or ``--batch auto``, decided from the
figures of the moves that have finished. Pure functions of those figures, no clock, no I/O.

The auto rule starts with one move and raises the level by one while the last finished batch
lost nothing to the guests (every move's longest ping gap within the target, no probe lost)
and moved more memory per second than the batch one level lower; it lowers the level (never
below one) as soon as a move at the current level shows a gap above the target or fails, and
holds it otherwise. A "batch at level N" is the moves started while N were allowed at once;
the level is judged on its last N finished moves, so a decision waits for a full batch.
A level at which a move showed a gap or failed is not tried again in the same run (that would
only repeat the gap on the next guests), and a batch without ping figures never raises it:
without a measured gap there is nothing to say the guests did not notice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from poolctl.model import MiB

AUTO_CAP = 8  # more parallel copies than this only queue on the hosts' links
# Without loss the longest gap is about one probe interval; one lost probe makes it about two.
# Half an interval of slack takes scheduling jitter on a busy host without hiding a lost probe.
GAP_SLACK = 1.5
GROWTH_MIN = 1.05  # less than 5 % more throughput is noise, not a reason to load the hosts more


@dataclass(frozen=True)
class MoveFigures:
    """What one finished move measured, as the rule reads it."""

    vm: str  # name, for the reason's words
    level: int  # how many moves were allowed at once when it started
    started_s: float  # on the runner's clock
    duration_s: float  # the hypervisor's move, without the ping's tail
    memory: int  # bytes moved (the VM's memory when the hypervisor does not count them)
    longest_gap_s: float | None  # None: no ping figures
    lost: int
    interval: float  # the probe interval the gap is judged against
    failed: bool = False  # failed or cancelled: not a success

    @property
    def ended_s(self) -> float:
        return self.started_s + self.duration_s

    def gap_above_target(self, slack: float = GAP_SLACK) -> bool:
        if self.lost:
            return True
        return self.longest_gap_s is not None and self.longest_gap_s > self.interval * slack


@dataclass(frozen=True)
class Decision:
    level: int
    previous: int
    reason: str  # in words, for the CLI's line and the TUI's panel

    @property
    def changed(self) -> bool:
        return self.level != self.previous


class ConcurrencyRule(Protocol):
    def first(self, vms: int) -> Decision:
        """The level to start with, for ``vms`` moves."""
        ...

    def next(self, current: int, finished: Sequence[MoveFigures], left: int) -> Decision:
        """The level after a move has finished; ``finished`` in finishing order, ``left`` the
        moves not finished yet (running or waiting)."""
        ...


@dataclass(frozen=True)
class FixedRule:
    """``--batch N``: N at once, whatever the figures say."""

    n: int

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"a batch of {self.n} moves at once: give 1 or more")

    def first(self, vms: int) -> Decision:
        return Decision(self.n, 0, f"{self.n} at a time (--batch {self.n})")

    def next(self, current: int, finished: Sequence[MoveFigures], left: int) -> Decision:
        return Decision(self.n, current, f"{self.n} at a time (--batch {self.n})")


@dataclass(frozen=True)
class AutoRule:
    """``--batch auto``; see ``auto_level``."""

    cap: int = AUTO_CAP
    slack: float = GAP_SLACK
    growth: float = GROWTH_MIN

    def first(self, vms: int) -> Decision:
        return Decision(1, 0, "starting with 1 at a time; more while the guests lose nothing and the throughput grows")

    def next(self, current: int, finished: Sequence[MoveFigures], left: int) -> Decision:
        return auto_level(current, finished, left, cap=self.cap, slack=self.slack, growth=self.growth)


def batch_at(level: int, finished: Sequence[MoveFigures]) -> list[MoveFigures] | None:
    """The last full batch at ``level``: its last ``level`` finished moves; None before that."""
    at = [f for f in finished if f.level == level]
    return at[-level:] if len(at) >= level else None


def throughput(batch: Sequence[MoveFigures]) -> float:
    """Memory moved per second over the batch's span (first start to last end), bytes/s."""
    ok = [f for f in batch if not f.failed]
    if not ok:
        return 0.0
    span = max(f.ended_s for f in batch) - min(f.started_s for f in batch)
    return sum(f.memory for f in ok) / max(span, 1e-3)


def auto_level(
    current: int,
    finished: Sequence[MoveFigures],
    left: int,
    *,
    cap: int = AUTO_CAP,
    slack: float = GAP_SLACK,
    growth: float = GROWTH_MIN,
) -> Decision:
    """The ``--batch auto`` rule (module docstring) after a move finished at level ``current``."""
    current = max(1, current)
    bad = [f for f in finished if f.failed or f.gap_above_target(slack)]
    # A level at which a guest lost probes (or a move failed) is not tried again in this run:
    # going back up would only repeat the gap on the next guests.
    ceiling = max(1, min(f.level for f in bad) - 1) if bad else cap
    if current > ceiling:
        worst = min(f.level for f in bad)
        return _lower(current, _bad_words([f for f in bad if f.level == worst][-1]))
    at = [f for f in finished if f.level == current]
    batch = batch_at(current, finished)
    if batch is None:
        return Decision(current, current, f"holding {current}: {len(at)} of {current} moves at {current} finished")
    now = throughput(batch)
    limit = min(cap, ceiling, max(1, left))
    if current >= limit:
        if bad and current >= ceiling:
            worst = min(f.level for f in bad)
            words = _bad_words([f for f in bad if f.level == worst][-1])
            why = f"at {worst} at once, {words}" if worst > current else words
        elif current >= cap:
            why = f"the cap of {cap}"
        else:
            why = f"only {left} VM{'s' if left != 1 else ''} left"
        clean = "" if any(f in bad for f in batch) else f"; last batch lost nothing, {_rate(now)}"
        return Decision(current, current, f"holding {current}: {why}{clean}")
    blind = [f for f in batch if f.longest_gap_s is None]
    if blind:
        return Decision(current, current, f"holding {current}: no ping figures from {blind[-1].vm} to judge the gap by")
    if current == 1:
        return Decision(2, current, f"1 → 2: last move lost nothing, {_rate(now)}")
    below = batch_at(current - 1, finished)
    if below is None:
        return Decision(current, current, f"holding {current}: no batch at {current - 1} to compare with")
    before = throughput(below)
    trend = f"throughput {_mib(before)} → {_mib(now)} MiB/s"
    if now >= before * growth:
        return Decision(current + 1, current, f"{current} → {current + 1}: last batch lost nothing, {trend}")
    return Decision(current, current, f"holding {current}: last batch lost nothing, but {trend} did not grow")


def _bad_words(f: MoveFigures) -> str:
    if f.failed:
        return f"the move of {f.vm} failed"
    gap = f"{f.longest_gap_s:.2f} s" if f.longest_gap_s is not None else "–"
    lost = f"lost {f.lost} probe{'s' if f.lost != 1 else ''}, " if f.lost else ""
    return f"{f.vm} {lost}longest gap {gap} (target {f.interval:.2f} s)"


def _lower(current: int, why: str) -> Decision:
    if current <= 1:
        return Decision(1, current, f"holding 1: {why}")
    return Decision(current - 1, current, f"{current} → {current - 1}: {why}")


def _mib(rate: float) -> str:
    return f"{rate / MiB:.0f}"


def _rate(rate: float) -> str:
    return f"throughput {_mib(rate)} MiB/s"
