"""What a move will look like before it starts: duration, pre-copy passes, the guest's pause,
the probes it will cost; and the inputs the tuner reads from poolctl's own audit log.

Pre-copy model: pass 1 sends the memory that past moves of this VM actually sent (else its
size) at the copy rate B; each later pass sends what the guest dirtied meanwhile (rate D, at
most the whole memory), until a pass fits in the max downtime: then the guest pauses for that
last pass plus the hypervisor's own switch-over (``SwitchoverModel``: device state, resuming
on the destination; uncapped, the hypervisor's own overshoot). D ≥ B never converges:
auto-converge throttles the guest (QEMU's throttle steps, 30 % less dirtying each), post-copy
switches after the first pass.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass

from poolctl.audit import MigrationRecord
from poolctl.backends.base import SwitchoverModel
from poolctl.migration.tuner import MIB, TuneInputs
from poolctl.model import MigrationOptions

MAX_PASSES = 30
THROTTLE_STEP_S = 1.0  # QEMU raises the throttle (20 %, then +10 %) about once a pass
PAST_MOVES = 5
SHORT_WIDTH = 76  # the migrate dialog's text width at 80 columns


@dataclass(frozen=True)
class Prediction:
    duration_s: float  # the whole move: the disks' copy (disk_s) and then the memory's
    passes: int
    pause_ms: float
    lost_probes: float | None  # expected value at the probe interval; None: no probe
    converges: bool
    copy_rate_bytes_s: float
    how: str  # one line: what the figures assume
    disk_s: float = 0.0  # of duration_s, the disks' copy (storage motion)

    def line(self) -> str:
        if not self.converges:
            return f"predicted: does not converge ({self.how}): allow auto-converge or post-copy"
        lost = "" if self.lost_probes is None else f", ~{self.lost_probes:.1f} probes lost"
        return (
            f"predicted: {self.duration_s:.1f} s, {self.passes} pre-copy passes, "
            f"pause {self.pause_ms:.0f} ms{lost} ({self.how})"
        )

    def short(self) -> str:
        """The figures alone, for a dialog's line (80 columns)."""
        if not self.converges:
            return "predicted: does not converge without auto-converge or post-copy"
        lost = "" if self.lost_probes is None else f" · ~{self.lost_probes:.1f} probes lost"
        disks = f" (disks {_span(self.disk_s)})" if self.disk_s else ""
        line = f"predicted: {_span(self.duration_s)}{disks} · {self.passes} passes · pause {self.pause_ms:.0f} ms{lost}"
        return line if len(line) <= SHORT_WIDTH else line.replace(" probes lost", " lost")

    def as_record(self) -> dict[str, object]:
        return {
            "duration_s": round(self.duration_s, 2) if self.converges else None,
            "passes": self.passes,
            "pause_ms": round(self.pause_ms, 1),
            "lost_probes": None if self.lost_probes is None else round(self.lost_probes, 2),
            "converges": self.converges,
            "copy_rate_mib_s": round(self.copy_rate_bytes_s / MIB, 1),
            **({"disk_s": round(self.disk_s, 1)} if self.disk_s else {}),
        }


def _span(seconds: float) -> str:
    # minutes past 100 s: a disk copy's hours stay short enough for the dialog's 76 columns
    return f"{seconds:.1f} s" if seconds < 100 else f"{seconds / 60:.1f} min"


def predict(inputs: TuneInputs, options: MigrationOptions, model: SwitchoverModel) -> Prediction:
    link = inputs.link_bytes_s or model.default_link_bytes_s
    rate = link
    if options.bandwidth_mib_s:
        rate = min(rate, options.bandwidth_mib_s * MIB)
    if options.parallel and options.parallel > 1 and not options.bandwidth_mib_s and inputs.link_bytes_s:
        rate = link  # more connections fill the link; the history already measured it
    size = float(inputs.copied_bytes or inputs.memory_bytes)
    dirty = float(inputs.dirty_rate_bytes_s or 0.0)
    limit_s = (options.max_downtime_ms or model.default_downtime_ms) / 1000
    x, total, passes, t_extra = size, 0.0, 0, 0.0
    converges, switched = True, False
    while True:
        passes += 1
        t = x / rate
        if t <= limit_s:
            break  # this pass is the stop-and-copy
        total += x
        if options.post_copy and options.post_copy_now:
            switched = True  # the rest follows on demand once the guest runs on the destination
            break
        nxt = min(float(inputs.memory_bytes), dirty * t)
        if nxt >= 0.95 * x:
            if options.auto_converge and dirty > 0 and t_extra < 10 * THROTTLE_STEP_S:
                dirty *= 0.7  # one throttle step: the vCPUs lose another share
                t_extra += THROTTLE_STEP_S
            elif options.post_copy:
                switched = True
                break
            else:
                converges = False
                break
        if passes >= MAX_PASSES:
            converges = options.post_copy
            switched = options.post_copy
            break
        x = nxt
    if switched and model.postcopy_switch_ms is not None:
        pause = model.postcopy_switch_ms
        x = 0.0
    else:
        last = min(x / rate, limit_s) * 1000
        if not options.bandwidth_mib_s:
            last = max(last, min(model.uncapped_overshoot_ms, 3 * limit_s * 1000))
        pause = last + model.device_state_ms + model.resume_ms
    disk_s = max(0.0, inputs.disk_copy_s)
    duration = disk_s + model.setup_s + (total + x) / rate + t_extra if converges else math.inf
    lost = None
    if inputs.probe_interval_s:
        lost = pause / 1000 / inputs.probe_interval_s
    how = (
        (f"the disks first, about {disk_s:.0f} s; then the memory: " if disk_s else "")
        + (f"copy at {rate / MIB:.0f} MiB/s ({inputs.link_source or 'assumed link'})")
        + (
            f", dirty {dirty / MIB:.1f} MiB/s ({inputs.dirty_rate_source})"
            if inputs.dirty_rate_bytes_s is not None
            else ""
        )
    )
    if switched:
        how += f", post-copy after pass {passes}"
    return Prediction(duration, passes, pause, lost, converges, rate, how, disk_s)


@dataclass(frozen=True)
class History:
    link_bytes_s: float | None
    link_source: str
    copied_bytes: float | None


def history(records: Iterable[MigrationRecord], *, pool: str, source: str, destination: str, vm_uuid: str) -> History:
    """Throughput of the last uncapped moves between the pair (either way), and what this VM's
    last moves copied, from the audit log (newest first)."""
    pair = {source, destination}
    rates: list[float] = []
    copied: list[float] = []
    for r in records:
        if r.pool != pool or r.result != "success" or not r.measured:
            continue
        m = r.measured
        rate, size = m.get("copy_rate_mib_s"), m.get("copied_mib")
        if {r.source, r.destination} == pair and isinstance(rate, int | float) and rate > 0:
            if not r.options.get("bandwidth_mib_s") and len(rates) < PAST_MOVES:
                rates.append(float(rate) * MIB)
        if vm_uuid and r.vm_uuid == vm_uuid and isinstance(size, int | float) and size > 0 and len(copied) < PAST_MOVES:
            copied.append(float(size) * MIB)
    link = statistics.median(rates) if rates else None
    src = f"median of the last {len(rates)} uncapped moves between these hosts" if rates else ""
    return History(link, src, statistics.median(copied) if copied else None)
