"""Before a move: gather the tuner's inputs (the VM, a dirty-rate measurement, the audit log),
choose the settings and predict the move. Shared by ``poolctl migrate`` and the TUI dialog.

Blocks for the dirty-rate measurement (about a second on KVM): run it in a worker thread.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from poolctl.audit import AuditLog, MigrationRecord
from poolctl.backends.base import Backend, BackendError
from poolctl.migration.predict import Prediction, history, predict
from poolctl.migration.tuner import MIB, TuneInputs, TuneRequest, Tuning, tune
from poolctl.model import VM

log = logging.getLogger(__name__)

DIRTY_RATE_S = 1


@dataclass(frozen=True)
class TunedPlan:
    inputs: TuneInputs
    tuning: Tuning
    prediction: Prediction

    def lines(self) -> list[str]:
        """What --dry-run and the dialog show: the inputs, each choice, the prediction."""
        i = self.inputs
        dirty = (
            f"{i.dirty_rate_bytes_s / MIB:.1f} MiB/s ({i.dirty_rate_source})"
            if i.dirty_rate_bytes_s is not None
            else i.dirty_rate_source
        )
        link = (
            f"{i.link_bytes_s / MIB:.0f} MiB/s ({i.link_source})"
            if i.link_bytes_s
            else "no past move between these hosts"
        )
        head = f"tuning {self.tuning.mode}: memory {i.memory_bytes / MIB:.0f} MiB, dirty rate {dirty}, link {link}"
        return [head, *(f"  {line}" for line in self.tuning.lines()), self.prediction.line()]

    def with_disk_copy(self, copy_bytes: int, rate_mib_s: float, backend: Backend) -> TunedPlan:
        """The same plan predicted with a disk copy of ``copy_bytes`` at ``rate_mib_s`` first."""
        seconds = copy_bytes / (rate_mib_s * MIB) if copy_bytes and rate_mib_s > 0 else 0.0
        if seconds == self.inputs.disk_copy_s:
            return self
        inputs = replace(self.inputs, disk_copy_s=seconds)
        return replace(self, inputs=inputs, prediction=predict(inputs, self.tuning.options, backend.SWITCHOVER))


def plan_move(
    backend: Backend,
    vm: VM,
    *,
    pool: str,
    source: str,
    destination: str,
    probe_interval_s: float | None,
    request: TuneRequest,
    audit: AuditLog | None = None,
    records: list[MigrationRecord] | None = None,
    measure: bool = True,
    supported: frozenset[str] | None = None,
) -> TunedPlan:
    """``source``/``destination`` are host names (as the audit log keeps them)."""
    if records is None:
        records, _problems = (audit or AuditLog()).read()
    past = history(records, pool=pool, source=source, destination=destination, vm_uuid=vm.uuid)
    dirty: float | None = None
    dirty_source = "not measured (tuning off)"
    if request.tune == "auto" and not measure:
        dirty_source = "not measured yet"
    elif request.tune == "auto":
        try:
            dirty = backend.measure_dirty_rate(vm.ref, DIRTY_RATE_S)
            dirty_source = (
                f"measured over {DIRTY_RATE_S} s" if dirty is not None else f"not measurable on {backend.NAME}"
            )
        except BackendError as err:
            dirty_source = f"not measured: {err}"
    inputs = TuneInputs(
        memory_bytes=vm.memory,
        probe_interval_s=probe_interval_s,
        dirty_rate_bytes_s=dirty,
        dirty_rate_source=dirty_source,
        link_bytes_s=past.link_bytes_s,
        link_source=past.link_source,
        copied_bytes=past.copied_bytes,
    )
    return retune(inputs, request, backend, probe_interval_s, supported)


def retune(
    inputs: TuneInputs,
    request: TuneRequest,
    backend: Backend,
    probe_interval_s: float | None,
    supported: frozenset[str] | None = None,
) -> TunedPlan:
    """The same measured inputs, settings chosen again (the dialog's fields changed);
    ``supported``: the options offered (default: the backend's capabilities)."""
    inputs = replace(inputs, probe_interval_s=probe_interval_s)
    offered = backend.capabilities.migration_options if supported is None else supported
    tuning = tune(inputs, request, offered)
    return TunedPlan(inputs, tuning, predict(inputs, tuning.options, backend.SWITCHOVER))
