"""The --batch rules on recorded figures: no clock, no simulator."""

from __future__ import annotations

import pytest

from poolctl.migration.concurrency import AutoRule, FixedRule, MoveFigures, auto_level, throughput
from poolctl.model import GiB, MiB

INTERVAL = 0.1


class Recorder:
    """Figures of finished moves laid out in time: each batch starts when the previous ends."""

    def __init__(self) -> None:
        self.figures: list[MoveFigures] = []
        self.t = 0.0

    def batch(self, level: int, seconds: float, *, gib: float = 2, gap: float = 0.1, lost: int = 0, failed=()):
        for i in range(level):
            name = f"vm{len(self.figures) + 1}"
            self.figures.append(
                MoveFigures(
                    vm=name,
                    level=level,
                    started_s=self.t,
                    duration_s=seconds,
                    memory=0 if i in failed else int(gib * GiB),
                    longest_gap_s=gap if i == level - 1 else INTERVAL,
                    lost=lost if i == level - 1 else 0,
                    interval=INTERVAL,
                    failed=i in failed,
                )
            )
        self.t += seconds
        return self


def test_auto_starts_with_one_and_rises_after_a_clean_first_move():
    rule = AutoRule()
    first = rule.first(10)
    assert first.level == 1 and "starting with 1" in first.reason
    r = Recorder().batch(1, 10.0)  # 2 GiB in 10 s
    d = rule.next(1, r.figures, 9)
    assert (d.level, d.changed) == (2, True)
    assert d.reason == "1 → 2: last move lost nothing, throughput 205 MiB/s"


def test_auto_rises_while_throughput_grows():
    r = Recorder().batch(1, 10.0).batch(2, 12.0)  # 205 -> 341 MiB/s
    d = auto_level(2, r.figures, 8)
    assert d.level == 3
    assert d.reason == "2 → 3: last batch lost nothing, throughput 205 → 341 MiB/s"


def test_auto_holds_when_throughput_no_longer_grows():
    r = Recorder().batch(1, 10.0).batch(2, 20.0)  # 205 -> 205 MiB/s: the link is full
    d = auto_level(2, r.figures, 8)
    assert (d.level, d.changed) == (2, False)
    assert d.reason == "holding 2: last batch lost nothing, but throughput 205 → 205 MiB/s did not grow"
    r = Recorder().batch(1, 10.0).batch(2, 19.5)  # 2.5 % more: noise
    assert auto_level(2, r.figures, 8).level == 2


def test_auto_waits_for_a_full_batch_at_the_new_level():
    r = Recorder().batch(1, 10.0).batch(2, 12.0)
    partial = r.figures[:-1]  # one of the two moves at 2 has finished
    d = auto_level(2, partial, 8)
    assert d.level == 2 and d.reason == "holding 2: 1 of 2 moves at 2 finished"


def test_auto_falls_on_a_gap_above_the_target():
    r = Recorder().batch(1, 10.0).batch(2, 12.0).batch(3, 14.0, gap=0.45, lost=3)
    d = auto_level(3, r.figures, 5)
    assert (d.level, d.changed) == (2, True)
    assert d.reason == "3 → 2: vm6 lost 3 probes, longest gap 0.45 s (target 0.10 s)"


def test_a_gap_without_loss_counts_but_jitter_does_not():
    jitter = Recorder().batch(1, 10.0, gap=0.13)  # a late probe, nothing missed
    assert auto_level(1, jitter.figures, 5).level == 2
    missed = Recorder().batch(1, 10.0).batch(2, 12.0, gap=0.21)  # one probe went unanswered
    d = auto_level(2, missed.figures, 5)
    assert d.level == 1 and "longest gap 0.21 s" in d.reason


def test_auto_falls_on_a_failure_and_never_below_one():
    r = Recorder().batch(1, 10.0).batch(2, 12.0, failed={0})
    d = auto_level(2, r.figures, 5)
    assert d.level == 1 and d.reason == "2 → 1: the move of vm2 failed"
    r = Recorder().batch(1, 10.0, failed={0})
    d = auto_level(1, r.figures, 5)
    assert (d.level, d.changed) == (1, False) and d.reason == "holding 1: the move of vm1 failed"


def test_a_level_that_showed_a_gap_is_not_tried_again():
    r = Recorder().batch(1, 10.0).batch(2, 12.0).batch(3, 14.0, gap=0.45, lost=3)
    r.batch(2, 10.0)  # back at 2: clean and faster than 1, but 3 already hurt a guest
    d = auto_level(2, r.figures, 5)
    assert d.level == 2
    assert d.reason.startswith("holding 2: at 3 at once, vm6 lost 3 probes")
    # late moves of the level that was left do not push the level down twice
    d = auto_level(2, r.figures + [r.figures[5]], 5)
    assert d.level == 2


def test_auto_never_goes_above_the_cap_nor_the_vms_left():
    r = Recorder().batch(1, 10.0).batch(2, 12.0)
    d = auto_level(2, r.figures, 2)
    assert d.level == 2 and d.reason.startswith("holding 2: only 2 VMs left")
    d = auto_level(2, r.figures, 10, cap=2)
    assert d.level == 2 and d.reason.startswith("holding 2: the cap of 2")
    capped = Recorder()
    level = 1
    for _ in range(12):
        capped.batch(level, 10.0)  # every batch of `level` moves takes as long as one: linear gain
        level = AutoRule(cap=4).next(level, capped.figures, 100).level
    assert level == 4


def test_without_ping_figures_the_level_does_not_rise():
    r = Recorder().batch(1, 10.0)
    blind = [MoveFigures(**{**vars(f), "longest_gap_s": None}) for f in r.figures]
    d = auto_level(1, blind, 5)
    assert d.level == 1 and d.reason == "holding 1: no ping figures from vm1 to judge the gap by"


def test_throughput_spans_the_batch_and_leaves_failed_moves_out():
    r = Recorder().batch(2, 8.0, gib=4, failed={1})
    assert throughput(r.figures) == pytest.approx(4 * GiB / 8.0)
    assert throughput(r.figures) / MiB == pytest.approx(512)


def test_fixed_is_the_same_interface_with_a_constant():
    rule = FixedRule(3)
    assert rule.first(10).level == 3 and rule.first(10).reason == "3 at a time (--batch 3)"
    r = Recorder().batch(3, 10.0, gap=1.0, lost=9, failed={0})
    d = rule.next(3, r.figures, 7)
    assert (d.level, d.changed) == (3, False)
    with pytest.raises(ValueError):
        FixedRule(0)
