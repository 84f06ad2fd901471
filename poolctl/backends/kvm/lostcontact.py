"""After the migrate call died with its connection to the source: learn how the move ended.

The hosts are read again (``whereabouts``) until two readings alike say where the VM is, for
``[migration] outcome_wait`` at most. Meanwhile the handle shows ``lost`` (the outcome is not
known) or, when the link is back and the source's daemon still runs the job, ``regained``."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from poolctl.backends.kvm.hostconn import HostConn
from poolctl.backends.kvm.whereabouts import Verdict, judge, sight

log = logging.getLogger("poolctl.backends.kvm")

READ_EVERY_S = (1.0, 2.0, 4.0)  # the hosts are read again this often (the last repeats)


@dataclass(frozen=True)
class Ending:
    verdict: Verdict  # known, or not (outcome_wait ran out)
    text: str  # for the user when not a success: what happened and what was read
    at: str  # how far the move was shown when contact was lost ("37 %")


class Learner:
    def __init__(self, src: HostConn, dst: HostConn, uuid: str, vm_name: str, stop: threading.Event):
        self._src, self._dst, self._uuid, self._name, self._stop = src, dst, uuid, vm_name, stop
        self.lost = ""  # "outcome unknown: lost contact with hostA at 37 %; still trying" while it is so
        self.regained = ""

    def learn(self, libvirt_words: str, shown: Callable[[], float], wait_s: float) -> Ending | None:
        """Read until the hosts tell (an Ending with a known verdict), or ``wait_s`` after contact
        was lost (not known); None when ``stop`` is set first. ``shown()``: the fraction shown."""
        src, vm = self._src.name, f"VM '{self._name}'"
        since = time.monotonic()  # out of contact, or without an answer that tells, since then
        at = self._lose(shown(), f"libvirt says: {libvirt_words}")
        previous: Verdict | None = None
        waits = iter(READ_EVERY_S)
        delay = next(waits)
        while True:
            on_src = sight(self._src, self._uuid)
            verdict = judge(on_src, sight(self._dst, self._uuid), vm)
            if verdict.outcome == "moving":  # the link is back and the source's daemon carries on
                since, self.lost = time.monotonic(), ""
                self.regained = f"contact with {src} is back: the migration goes on"
                waits = iter(READ_EVERY_S)
            elif not on_src.read and not self.lost:  # lost again
                since, at = time.monotonic(), self._lose(shown(), on_src.error)
            if verdict.known and verdict == previous:  # read twice alike: not a daemon mid-recovery
                return Ending(
                    verdict,
                    f"migration of {vm} from {src} to {self._dst.name}: lost contact with {src} at {at} "
                    f"({libvirt_words}); read afterwards: {verdict.seen}",
                    at,
                )
            previous = verdict
            if verdict.outcome != "moving" and (lost_s := time.monotonic() - since) > wait_s:
                text = (
                    f"lost contact with {src} at {at} for {lost_s:.0f} s: how the migration of {vm} to "
                    f"{self._dst.name} ended is not known ({verdict.seen}; see `poolctl ls`)"
                )
                log.warning("%s: %s", vm, text)
                return Ending(verdict, text, at)
            if self._stop.wait(delay):
                return None
            delay = next(waits, delay)

    def _lose(self, fraction: float, why: str) -> str:
        at = f"{round(100 * fraction)} %"
        self.regained = ""
        self.lost = f"outcome unknown: lost contact with {self._src.name} at {at}; still trying"
        log.warning("VM '%s': %s (%s)", self._name, self.lost, why)
        return at
