"""What poolctl changes on a running libvirt migration job, and what it tells the user about it:
the max downtime (set before the call and again once the job shows), post-copy once the passes
stop shrinking (or after the first, as chosen), and auto-converge throttling the guest."""

from __future__ import annotations

import logging
from typing import Any

import libvirt

from poolctl.backends.kvm.errors import words
from poolctl.model import MigrationOptions

log = logging.getLogger("poolctl.backends.kvm")

POSTCOPY_AFTER_ITERATIONS = 3  # memory passes that did not converge before switching to post-copy
STALLED_SHARE = 0.9  # a pass that leaves this share of the last one's remainder has not converged


class Steering:
    def __init__(self, options: MigrationOptions, vm_name: str):
        self.options = options
        self._name = vm_name
        self.postcopy = False  # the move switched to post-copy (or libvirt shows it did)
        self.escalations: list[str] = []  # what changed during the move, in words
        self._downtime_set = False
        self._downtime_error: str | None = None  # libvirt's words when the max downtime was refused
        self._remaining: dict[int, int] = {}  # pass number -> memory left when it was seen
        self._throttle = 0

    def set_max_downtime(self, dom: libvirt.virDomain) -> None:
        # Set once before the call and again once the job shows: libvirt 9.0 accepts it
        # either way, and a fast migration may converge before the first poll.
        if not self.options.max_downtime_ms:
            return
        try:
            dom.migrateSetMaxDowntime(int(self.options.max_downtime_ms), 0)
            self._downtime_error = None
        except libvirt.libvirtError as err:
            # The migration still runs, with QEMU's default limit: the user is told (note())
            self._downtime_error = words(err)

    def note(self) -> str:
        """What the user should know about the settings of this run ('' when nothing)."""
        if self._downtime_error and self._downtime_set:
            return (
                f"max downtime {self.options.max_downtime_ms:.0f} ms not applied "
                f"({self._downtime_error}); QEMU's default limit applies"
            )
        return ""

    def steer(self, dom: libvirt.virDomain, st: dict[str, Any], *, cancelling: bool) -> None:
        """Settings that need a running migration job (``st``: its jobStats)."""
        if not st.get("type"):
            return
        if not self._downtime_set and self.options.max_downtime_ms:
            self._downtime_set = True
            self.set_max_downtime(dom)
            if self._downtime_error:
                log.warning("VM %s: %s", self._name, self.note())
        throttle = int(st.get("auto_converge_throttle") or 0)
        if throttle > self._throttle:
            if not self._throttle:
                self.escalations.append(f"auto-converge: the hypervisor throttles the guest's vCPUs ({throttle} %)")
            self._throttle = throttle
        if self.options.post_copy and not self.postcopy and not cancelling:
            why = self.postcopy_reason(st)
            if why:
                try:
                    dom.migrateStartPostCopy(0)
                    self.postcopy = True
                    self.escalations.append(f"post-copy: {why}")
                except libvirt.libvirtError as err:
                    log.warning("VM %s: post-copy refused: %s", self._name, words(err))

    def postcopy_reason(self, st: dict[str, Any]) -> str:
        """Why to switch to post-copy now ('' for not yet): asked for after the first pass, or
        the passes stopped shrinking (auto-converge, if on, had its passes first)."""
        passes = int(st.get("memory_iteration") or 0)
        remaining = st.get("memory_remaining")
        if passes < 1 or remaining is None:
            return ""
        self._remaining.setdefault(passes, int(remaining))
        if self.options.post_copy_now and passes >= 2:
            return "switched after the first pass, as chosen"
        if passes < POSTCOPY_AFTER_ITERATIONS + (2 if self.options.auto_converge else 0):
            return ""
        before, now = self._remaining.get(passes - 1), self._remaining[passes]
        if before and now >= STALLED_SHARE * before:
            mib = now / (1 << 20)
            return f"pass {passes} left {mib:.0f} MiB, no less than pass {passes - 1}: pre-copy is not converging"
        return ""
