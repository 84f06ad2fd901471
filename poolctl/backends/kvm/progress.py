"""A live migration's progress read off libvirt's job stats: each ``jobStats()`` dict polled on
the source, with the domain's state and reason, becomes poolctl's MigrationProgress.

libvirt's figures do not move only forward: dirty pages grow the remainder again, a post-copy
source pauses after the switch, a cancelled job polls empty, a stale answer shows the disks
after the memory began. What the panel shows never goes back, so the reading keeps the
furthest phase it gave (and the caller hands it the furthest fraction).

Apart from the handle (migration.py), which owns the libvirt calls, so that the reading can be
tested on recorded stats dicts without a move.
"""

from __future__ import annotations

from typing import Any

import libvirt

from poolctl.format import size
from poolctl.model import MigrationPhase, MigrationProgress

_ORDER = {
    p: i
    for i, p in enumerate(
        (
            MigrationPhase.PREPARING,
            MigrationPhase.COPYING_STORAGE,  # copy storage: the disks before the memory (copy_storage.py)
            MigrationPhase.COPYING,
            MigrationPhase.STOP_AND_COPY,
            MigrationPhase.FINISHING,
        )
    )
}


def in_postcopy(state: int, reason: int) -> bool:
    """The domain's state says the move runs post-copy: paused on the source, running on the destination."""
    return bool(state == libvirt.VIR_DOMAIN_PAUSED and reason == libvirt.VIR_DOMAIN_PAUSED_POSTCOPY)


class JobProgress:
    """One move's reading, poll after poll: what earlier polls showed decides the next (the
    furthest phase, whether data flowed, post-copy)."""

    def __init__(self, destination: str, disks_first: bool = False):
        self.destination = destination  # the destination host's name, for the post-copy words
        # copy storage: libvirt mirrors the disks before the memory, shown as a phase of its own
        self.disks_first = disks_first
        self.memory = 0  # bytes of guest memory: the disks' share of the fraction is theirs in bytes
        self.phase = MigrationPhase.PREPARING  # the furthest phase given
        self.postcopy = False  # the domain's state showed post-copy, or the caller said it switched
        self._seen_data = False

    def read(
        self,
        st: dict[str, Any],
        state: int,
        reason: int,
        best: float,
        *,
        iteration: int = 0,
        postcopy: bool = False,
        cancelling: bool = False,
    ) -> MigrationProgress:
        """This poll's progress. ``st``: jobStats() as libvirt returned it; ``state``, ``reason``:
        the domain's; ``best``: the furthest fraction shown; ``iteration``: the pass the
        MIGRATION_ITERATION event told last; ``postcopy``: the move was switched to post-copy;
        ``cancelling``: a cancel was asked for."""
        p = self._raw(st, state, reason, best, iteration, postcopy, cancelling)
        # post-copy after a switchover pause, an empty poll after a cancel: keep the furthest phase
        if _ORDER[p.phase] < _ORDER[self.phase]:
            p = p.model_copy(update={"phase": self.phase})
        self.phase = p.phase
        return p

    def _raw(
        self,
        st: dict[str, Any],
        state: int,
        reason: int,
        best: float,
        event_iteration: int,
        postcopy: bool,
        cancelling: bool,
    ) -> MigrationProgress:
        disk_total = int(st.get("disk_total") or 0)
        if self.disks_first and disk_total and not st.get("memory_processed") and not cancelling:
            return self._disks(st, disk_total, best)
        total = st.get("data_total") or st.get("memory_total") or 0
        processed = st.get("data_processed", st.get("memory_processed")) or 0
        remaining = st.get("data_remaining", st.get("memory_remaining"))
        # QEMU counts passes in jobStats; the MIGRATION_ITERATION event says the same sooner.
        iteration = max(st.get("memory_iteration") or 0, event_iteration) or None
        dirty = st.get("memory_dirty_rate")
        if dirty is not None:
            dirty = int(dirty) * int(st.get("memory_page_size") or 4096)  # pages/s -> bytes/s
        fraction = best
        if total and remaining is not None:
            fraction = max(best, min(1.0, max(0.0, 1 - remaining / total)))
        if postcopy or self.postcopy or in_postcopy(state, reason):
            self.postcopy = True
            return MigrationProgress(
                phase=MigrationPhase.COPYING,
                fraction=fraction,
                bytes_done=processed or None,
                bytes_total=total or None,
                cancellable=False,
                iteration=iteration,
                dirty_rate=dirty,
                message=f"post-copy: VM runs on {self.destination}, memory follows on demand",
            )
        if cancelling:
            return MigrationProgress(
                phase=self.phase,
                fraction=fraction,
                cancellable=False,
                message="cancelling: waiting for libvirt to stop the job",
            )
        if not st.get("type") or not total or not processed:
            # Before the data flows: preparing. After it did: the job is over and libvirt
            # is finishing on the destination (the call has not returned yet).
            if self._seen_data:
                return MigrationProgress(phase=MigrationPhase.FINISHING, fraction=fraction, cancellable=False)
            return MigrationProgress(phase=MigrationPhase.PREPARING, fraction=fraction, cancellable=True)
        if state == libvirt.VIR_DOMAIN_PAUSED and reason == libvirt.VIR_DOMAIN_PAUSED_MIGRATION:
            phase = MigrationPhase.STOP_AND_COPY
        else:
            phase = MigrationPhase.COPYING
        self._seen_data = True
        return MigrationProgress(
            phase=phase,
            fraction=fraction,
            bytes_done=processed,
            bytes_total=total,
            cancellable=True,
            iteration=iteration,
            dirty_rate=dirty,
        )

    def _disks(self, st: dict[str, Any], disk_total: int, best: float) -> MigrationProgress:
        done = int(st.get("disk_processed") or 0)
        # the memory follows: the disks' share of the whole move is theirs in bytes (data_total
        # counts only the disks until the memory copy begins)
        fraction = max(best, min(1.0, done / (disk_total + self.memory)))
        self._seen_data = True
        return MigrationProgress(
            phase=MigrationPhase.COPYING_STORAGE,
            fraction=fraction,
            bytes_done=done,
            bytes_total=disk_total,
            cancellable=True,
            message=f"disks: {size(done)} of {size(disk_total)}",
        )
