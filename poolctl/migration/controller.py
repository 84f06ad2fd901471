"""One live migration as the TUI and the CLI run it: the backend's handle, a pinger beside it,
progress and ping figures for the screen, cancel, and an audit record at the end.

No Textual here. Blocking calls (``run``, ``cancel``) belong in worker threads; the reading
side (``progress``, ``ping_stats()``, ``eta_s()``…) is safe from any thread because the
controller only ever swaps whole immutable objects.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from poolctl.audit import AuditLog, MigrationRecord
from poolctl.backends.base import Backend, CancelRefused, MigrationHandle, OperationRefused
from poolctl.errors import describe
from poolctl.migration.compare import measured
from poolctl.migration.storage import measured_copy
from poolctl.migration.words import cancel_refusal
from poolctl.model import MigrationOptions, MigrationPhase, MigrationProgress, MigrationResult
from poolctl.ping.limits import DEFAULT_INTERVAL
from poolctl.ping.pinger import Pinger
from poolctl.ping.stats import PingStats, Sample
from poolctl.redact import scrub
from poolctl.safe_text import shown

log = logging.getLogger(__name__)

ABANDON_WRITE_S = 5.0  # abandon() stops the pinger (≤ 1 s) before it writes; past this the follower writes
PING_TAIL_S = 1.0  # keep pinging this long after the move ends: the switch-over's gap shows late


class MigrationBusy(Exception):
    """This VM is already moving (in this process): a second migration is refused."""


@dataclass(frozen=True)
class MigrationPlan:
    """Everything needed to start one move; names are for people, refs for the backend."""

    pool: str
    vm: str  # ref
    vm_name: str
    source: str  # host ref
    source_name: str
    destination: str  # host ref
    destination_name: str
    vm_uuid: str = ""
    options: MigrationOptions = field(default_factory=MigrationOptions)
    ping_address: str | None = None  # None: no ping
    ping_interval: float = DEFAULT_INTERVAL
    ping_port: int | None = None
    ping_method: str = "auto"
    outcome_wait_s: float = 600.0  # after losing contact, how long to keep trying to learn the outcome
    tuning: tuple[str, ...] = ()  # each setting chosen and why (poolctl.migration.tuner)
    predicted: dict[str, object] = field(default_factory=dict)  # Prediction.as_record()
    # storage motion (options.disk_srs): the pre-check's lines of what is copied, and its size
    disk_copies: tuple[str, ...] = ()
    disk_copy_bytes: int = 0
    vm_memory: int = 0  # bytes: what a move copies when the hypervisor does not say (Xen)

    @property
    def route(self) -> str:
        return f"{shown(self.source_name)} → {shown(self.destination_name)}"


class MigrationRegistry:
    """The migrations running in this process, one per (pool, VM)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: dict[tuple[str, str], MigrationController] = {}

    def claim(self, controller: MigrationController) -> None:
        plan = controller.plan
        with self._lock:
            other = self._active.get((plan.pool, plan.vm))
            if other is not None and other is not controller:
                raise MigrationBusy(
                    f"{plan.vm_name} is already migrating ({other.plan.route}, started "
                    f"{other.elapsed_s():.0f} s ago); wait for it to end or cancel it first"
                )
            self._active[(plan.pool, plan.vm)] = controller

    def release(self, controller: MigrationController) -> None:
        with self._lock:
            key = (controller.plan.pool, controller.plan.vm)
            if self._active.get(key) is controller:
                del self._active[key]

    def get(self, pool: str, vm: str) -> MigrationController | None:
        with self._lock:
            return self._active.get((pool, vm))

    def active(self) -> list[MigrationController]:
        with self._lock:
            return list(self._active.values())


REGISTRY = MigrationRegistry()


class MigrationController:
    """Run ``plan`` on ``backend``: ``claim()`` (fast, refuses a VM already moving), then
    ``run()`` in a worker thread; ``cancel()`` from another one."""

    def __init__(
        self,
        backend: Backend,
        plan: MigrationPlan,
        *,
        registry: MigrationRegistry = REGISTRY,
        audit: AuditLog | None = None,
        secrets: Iterable[str] = (),
        ping_tail_s: float = PING_TAIL_S,
        host_name: Callable[[str | None], str] | None = None,
    ) -> None:
        self.backend = backend
        self.plan = plan
        self.registry = registry
        self.audit = audit if audit is not None else AuditLog()
        self.secrets = tuple(s for s in secrets if s)
        self.ping_tail_s = ping_tail_s
        self._host_name = host_name or self._plan_host_name
        self.id = uuid.uuid4().hex
        self.requested_at = datetime.now(UTC)
        self._t0 = time.monotonic()
        self._t_end: float | None = None
        self._first_fraction: tuple[float, float] | None = None  # (t, fraction) of the first progress
        self._last_fraction: float | None = None  # before the end: a cancelled move stopped there
        self.progress: MigrationProgress = MigrationProgress(
            phase=MigrationPhase.PREPARING, cancellable=False, message="starting"
        )
        self.pinger: Pinger | None = None
        self.ping_error = ""
        self.handle: MigrationHandle | None = None
        self.refused = False  # the hypervisor refused to start the move: nothing moved
        # A cancel asked for before the hypervisor has the task waits for it (cancel()):
        self._cancel_lock = threading.Lock()
        self.cancel_queued = False
        self.cancel_sent = False
        self.cancel_error = ""  # why a queued cancel could not be sent
        self._unknown_logged = False  # an "unknown" line is in the log; the final one completes it
        self.result: MigrationResult | None = None
        self.record: MigrationRecord | None = None
        self.audit_error = ""
        self.finished = threading.Event()  # set once the record exists (after the ping tail)
        self._claimed = False
        # Set by abandon() before it ends the follower: the follower must then leave the record to it.
        self._abandoned = False
        self._write_lock = threading.Lock()

    # --- reading side (any thread) ----------------------------------------------------------

    @property
    def ended(self) -> bool:
        """The hypervisor's move is over (the ping may still run its short tail)."""
        return self.result is not None

    def elapsed_s(self) -> float:
        end = self._t_end if self._t_end is not None else time.monotonic()
        return max(0.0, end - self._t0)

    def eta_s(self) -> float | None:
        """Seconds left, from the progress rate so far; None until there is a rate."""
        p, first = self.progress, self._first_fraction
        if self.ended or p.fraction is None or first is None or p.fraction <= first[1]:
            return None
        rate = (p.fraction - first[1]) / max(1e-6, time.monotonic() - first[0])
        return max(0.0, (1.0 - p.fraction) / rate)

    def ping_stats(self) -> PingStats | None:
        return self.pinger.stats() if self.pinger is not None else None

    def ping_samples(self) -> list[Sample]:
        return self.pinger.samples() if self.pinger is not None else []

    def host_name(self, ref: str | None) -> str:
        return self._host_name(ref)

    def _plan_host_name(self, ref: str | None) -> str:
        if ref is None:
            return "no host (not running)"
        return {self.plan.source: self.plan.source_name, self.plan.destination: self.plan.destination_name}.get(
            ref, ref
        )

    # --- running (worker thread) ------------------------------------------------------------

    def claim(self) -> None:
        """Register as this VM's migration; raises ``MigrationBusy`` if one already runs."""
        self.registry.claim(self)
        self._claimed = True

    def run(self) -> MigrationRecord:
        """Start the move and the pinger, follow the move to its end, write the record.

        Never raises for the hypervisor's refusals or failures: they become the record."""
        if not self._claimed:
            self.claim()
        try:
            self._start_pinger()
            try:
                handle = self.backend.migrate(self.plan.vm, self.plan.destination, self.plan.options)
                handle.outcome_wait_s = self.plan.outcome_wait_s
                with self._cancel_lock:
                    self.handle = handle
            except Exception as err:
                self.refused = isinstance(err, OperationRefused)
                self._end(
                    MigrationResult(
                        vm=self.plan.vm,
                        source=self.plan.source,
                        destination=self.plan.destination,
                        outcome="failed",
                        host=self.plan.source,
                        error=describe(err),
                    ),
                    MigrationPhase.FAILED,
                    describe(err),
                )
                return self._finish()
            self._follow(handle)
            return self._finish()
        finally:
            self.registry.release(self)

    def _start_pinger(self) -> None:
        p = self.plan
        if not p.ping_address:
            self.ping_error = "no address to ping"
            return
        try:
            self.pinger = Pinger(
                p.ping_address, interval=p.ping_interval, port=p.ping_port, method=p.ping_method
            ).start()
        except Exception as err:
            self.ping_error = str(err) or type(err).__name__

    def _follow(self, handle: MigrationHandle) -> None:
        last: MigrationProgress | None = None
        try:
            for progress in handle.updates():
                if progress.fraction and self._first_fraction is None:
                    self._first_fraction = (time.monotonic(), progress.fraction)
                if not progress.phase.terminal:
                    self._last_fraction = progress.fraction
                self.progress = last = progress
                if self.cancel_queued and not self.cancel_sent and not self.cancel_error:
                    self._send_queued_cancel(handle, progress)
                if progress.out_of_contact and not self._unknown_logged:
                    self._log_unknown(progress)
        except Exception as err:
            last = MigrationProgress(phase=MigrationPhase.FAILED, message=describe(err))
        if self._abandoned and handle.result is None:
            return  # abandoned: stop_following() ended updates(); the log says 'unfinished'
        result = handle.result
        if result is None:
            phase = last.phase if last is not None and last.phase.terminal else MigrationPhase.FAILED
            outcome = {MigrationPhase.DONE: "success", MigrationPhase.CANCELLED: "cancelled"}.get(phase, "failed")
            message = last.message if last is not None else "the hypervisor reported no outcome"
            result = MigrationResult(
                vm=self.plan.vm,
                source=self.plan.source,
                destination=self.plan.destination,
                outcome=outcome,
                host=None,
                error="" if outcome == "success" else message,
                duration_s=round(self.elapsed_s(), 3),
            )
        phase = {"success": MigrationPhase.DONE, "cancelled": MigrationPhase.CANCELLED}.get(
            result.outcome, MigrationPhase.FAILED
        )
        self.refused = result.refused
        self._end(result, phase, result.error)

    def _end(self, result: MigrationResult, phase: MigrationPhase, message: str) -> None:
        self._t_end = time.monotonic()
        fraction = 1.0 if phase == MigrationPhase.DONE else self._last_fraction
        self.progress = MigrationProgress(phase=phase, fraction=fraction, message=message)
        self.result = result

    def _finish(self) -> MigrationRecord:
        if self._abandoned and self.result is None:
            # abandoned while followed: abandon() writes 'unfinished' once the pinger has stopped
            if self.finished.wait(ABANDON_WRITE_S) and self.record is not None:
                return self.record
            return self._write("unfinished", "", self.elapsed_s(), "poolctl stopped watching", None, None)
        stats: PingStats | None = None
        if self.pinger is not None and not self.finished.is_set():
            if self.ping_tail_s > 0:
                time.sleep(self.ping_tail_s)
            stats = self.pinger.stop()
            if self.pinger.error is not None and not self.ping_error:
                self.ping_error = str(self.pinger.error)
        result = self.result
        assert result is not None
        return self._write(
            "refused" if result.refused else result.outcome,
            self.host_name(result.host) if result.host else "",
            result.duration_s or self.elapsed_s(),
            result.error,
            result.downtime_ms,
            stats,
        )

    def abandon(self, reason: str) -> MigrationRecord | None:
        """Stop watching a move that is still running (poolctl is quitting): the hypervisor
        carries on, the pinger stops, and the log says the outcome is unknown."""
        if self.finished.is_set():
            return self.record
        self._abandoned = True
        if self.handle is not None:
            self.handle.stop_following()  # the follower thread ends and logs its session out
        stats = self.pinger.stop(drain=False, timeout=1.0) if self.pinger is not None else None
        result = self.result
        if result is not None:
            # the move is over, only the ping's tail is cut short: the outcome is known, log it
            return self._write(
                result.outcome,
                self.host_name(result.host) if result.host else "",
                result.duration_s or self.elapsed_s(),
                result.error,
                result.downtime_ms,
                stats,
            )
        return self._write("unfinished", "", self.elapsed_s(), reason, None, stats)

    def _log_unknown(self, progress: MigrationProgress) -> None:
        """Contact is lost mid-move: the log says "unknown" now (poolctl may be killed before it
        learns more); the record written at the end, same id, completes it."""
        self._unknown_logged = True
        p = self.plan
        try:
            self.audit.append(
                MigrationRecord(
                    id=self.id,
                    time=self.requested_at.isoformat(timespec="seconds"),
                    pool=p.pool,
                    vm=p.vm_name,
                    vm_uuid=p.vm_uuid,
                    source=p.source_name,
                    destination=p.destination_name,
                    result="unknown",
                    duration_s=round(self.elapsed_s(), 3),
                    ping_address=p.ping_address or "",
                    error=scrub(progress.message, self.secrets),
                    options=p.options.model_dump(exclude_defaults=True),
                )
            )
        except OSError as exc:
            self.audit_error = str(exc)

    def _write(
        self, outcome: str, now_on: str, duration: float, error: str, downtime: float | None, stats: PingStats | None
    ) -> MigrationRecord:
        with self._write_lock:
            if self.record is not None:  # abandoned meanwhile, or the other way round
                return self.record
            p = self.plan
            memory = 0 if p.disk_copy_bytes else p.vm_memory  # a disk copy's time is not the memory's
            record = MigrationRecord(
                id=self.id,
                time=self.requested_at.isoformat(timespec="seconds"),
                pool=p.pool,
                vm=p.vm_name,
                vm_uuid=p.vm_uuid,
                source=p.source_name,
                destination=p.destination_name,
                result=outcome,
                now_on=now_on,
                duration_s=round(duration, 3),
                ping_address=p.ping_address or "",
                ping_method=self.pinger.method if self.pinger is not None else "",
                ping_sent=stats.sent if stats else 0,
                ping_lost=stats.lost if stats else 0,
                ping_longest_gap_s=round(stats.longest_gap_s, 3) if stats and stats.sent else None,
                ping_error=scrub(self.ping_error, self.secrets),
                downtime_ms=downtime,
                error=scrub(error, self.secrets),
                options=p.options.model_dump(exclude_defaults=True),
                tuning=list(p.tuning),
                predicted=dict(p.predicted),
                measured=(
                    measured(self.result, stats, p.ping_interval, memory, self.backend.SWITCHOVER.setup_s)
                    | measured_copy(p.disk_copy_bytes, duration)
                    if outcome == "success"
                    else {}
                ),
            )
            try:
                self.audit.append(record)
            except OSError as err:
                self.audit_error = str(err)
                log.warning("%s", err)
            self.record = record
            self.finished.set()
            return record

    # --- cancel (worker thread) -------------------------------------------------------------

    def cancel(self, *, queue: bool = True) -> bool:
        """Ask the hypervisor to stop the move: True when asked now, False when queued (the move
        is still being started: the cancel goes out as soon as the hypervisor has a task that
        can be cancelled; ``queue=False`` refuses instead). ``CancelRefused`` says why not."""
        with self._cancel_lock:
            if self.result is not None:
                raise CancelRefused(f"the migration of {self.plan.vm_name} has already ended ({self.result.outcome})")
            handle = self.handle
            if handle is None:
                if not queue:
                    raise CancelRefused(f"the migration of {self.plan.vm_name} is still being started")
                self.cancel_queued = True
                return False
        if not self.progress.cancellable:
            raise CancelRefused(cancel_refusal(self.plan.vm_name, self.progress))
        handle.cancel()
        self.cancel_sent = True
        return True

    def _send_queued_cancel(self, handle: MigrationHandle, progress: MigrationProgress) -> None:
        """In the follower: the queued cancel, once the task can take it (or why it never will)."""
        if progress.phase.terminal:
            return
        if not progress.cancellable:
            if progress.phase != MigrationPhase.PREPARING:
                self.cancel_error = cancel_refusal(self.plan.vm_name, progress)
            return
        try:
            handle.cancel()
        except Exception as err:
            self.cancel_error = describe(err)
            return
        self.cancel_sent = True
