"""gc_paused(): one counted pause of the cyclic collector, shared by every thread."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from poolctl.gcpause import gc_paused

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(autouse=True)
def collector_enabled() -> Iterator[None]:
    # every test starts from the usual state and leaves it, whatever it did to the collector
    gc.enable()
    yield
    gc.enable()


def test_pauses_the_collector_and_resumes_it():
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_resumes_when_the_block_raises():
    with pytest.raises(RuntimeError, match="boom"):
        with gc_paused():
            raise RuntimeError("boom")
    assert gc.isenabled()


def test_nested_pauses_resume_only_when_the_outermost_ends():
    with gc_paused():
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled(), "the inner pause ended the outer one early"
    assert gc.isenabled()


def test_a_collector_disabled_before_stays_disabled():
    gc.disable()
    with gc_paused():
        with gc_paused():
            assert not gc.isenabled()
    assert not gc.isenabled()
    # and the next pause, with the collector on again, still restores "on"
    gc.enable()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


class Pauser:
    """A thread that enters gc_paused() when told and leaves when told."""

    def __init__(self, name: str):
        self.enter, self.leave = threading.Event(), threading.Event()
        self.entered, self.left = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.enter.wait()
        with gc_paused():
            self.entered.set()
            self.leave.wait()
        self.left.set()

    def step_in(self) -> None:
        self.enter.set()
        assert self.entered.wait(10), f"{self.thread.name} never entered the pause"

    def step_out(self) -> None:
        self.leave.set()
        assert self.left.wait(10), f"{self.thread.name} never left the pause"
        self.thread.join(10)


def test_overlapping_pauses_in_two_threads_resume_when_the_last_one_ends():
    a, b = Pauser("pause-a"), Pauser("pause-b")
    try:
        a.step_in()
        assert not gc.isenabled()
        b.step_in()
        a.step_out()
        assert not gc.isenabled(), "thread A's end resumed collection while thread B still pauses it"
        b.step_out()
        assert gc.isenabled()
    finally:
        a.enter.set(), a.leave.set(), b.enter.set(), b.leave.set()


def test_overlapping_pauses_ending_in_the_order_they_began_or_not():
    # B leaves first this time: still one pause outstanding (A's) until A leaves
    a, b = Pauser("pause-a"), Pauser("pause-b")
    try:
        a.step_in()
        b.step_in()
        b.step_out()
        assert not gc.isenabled()
        a.step_out()
        assert gc.isenabled()
    finally:
        a.enter.set(), a.leave.set(), b.enter.set(), b.leave.set()


def test_no_automatic_collection_runs_while_paused():
    collections: list[str] = []

    def seen(phase: str, info: dict) -> None:
        if phase == "start":
            collections.append(info["generation"])

    gc.callbacks.append(seen)
    try:
        with gc_paused():
            # far past generation 0's threshold: would trigger collections if the collector ran
            junk = [[i] for i in range(50 * gc.get_threshold()[0])]
            during = list(collections)
        # (the first allocation once resumed may well collect: that is after the pause)
        assert not during, f"collections ran while paused: generations {during}"
        del junk
    finally:
        gc.callbacks.remove(seen)
