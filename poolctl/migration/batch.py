"""Many moves: a plan's VMs moved by up to N ``MigrationController``s at once, each with its own
pinger, N set by a concurrency rule from the finished moves' figures.

``BatchRunner.run()`` blocks (a CLI's main thread or a TUI worker); every move runs in a thread
of its own, as one ``poolctl migrate`` does. Events reach ``on_event`` from the thread that
called ``run()``: started, progress, finished (with the figures), level changed (with the
rule's reason), stopping, cancel answers, done (with the summary: batch_summary.py). A TUI
posts them on.

A failed move stops new starts; the running ones finish; the summary says which VMs moved and
which did not. ``cancel()`` (any thread) asks every running move that can still be cancelled
to stop, and starts no more.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from poolctl.audit import MigrationRecord
from poolctl.backends.base import Backend, BackendError, CancelRefused
from poolctl.errors import describe
from poolctl.migration.batch_summary import MoveLine, Summary
from poolctl.migration.concurrency import ConcurrencyRule, Decision, MoveFigures
from poolctl.migration.controller import MigrationBusy, MigrationController, MigrationPlan
from poolctl.migration.planner import Placement, Plan
from poolctl.model import MigrationOptions, MigrationPhase, MigrationProgress
from poolctl.ping.limits import DEFAULT_INTERVAL

POLL_S = 0.25  # how often running moves' progress is looked at (and sent on when it changed)

MakeController = Callable[[Backend, MigrationPlan], MigrationController]


# --- events ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MoveStarted:
    placement: Placement
    controller: MigrationController
    level: int


@dataclass(frozen=True)
class MoveProgress:
    placement: Placement
    controller: MigrationController
    progress: MigrationProgress


@dataclass(frozen=True)
class MoveFinished:
    placement: Placement
    line: MoveLine
    figures: MoveFigures
    record: MigrationRecord | None  # None when the move could not even start


@dataclass(frozen=True)
class LevelChanged:
    decision: Decision


@dataclass(frozen=True)
class Stopping:
    reason: str  # no new moves start; the running ones finish


@dataclass(frozen=True)
class CancelAnswer:
    vm: str
    message: str  # "cancel asked", or why the hypervisor will not


@dataclass(frozen=True)
class BatchDone:
    summary: Summary


BatchEvent = MoveStarted | MoveProgress | MoveFinished | LevelChanged | Stopping | CancelAnswer | BatchDone


# --- the runner --------------------------------------------------------------------------------


def migration_plan(
    pool: str,
    placement: Placement,
    *,
    options: MigrationOptions | None = None,
    ping_interval: float = DEFAULT_INTERVAL,
    ping_port: int | None = None,
    ping_method: str = "auto",
) -> MigrationPlan:
    """One move of the plan as the controller takes it; the VM's first address is pinged."""
    vm, dest = placement.vm, placement.destination
    if dest is None:
        raise ValueError(f"{vm.name} has no destination: {placement.why}")
    return MigrationPlan(
        pool=pool,
        vm=vm.ref,
        vm_memory=vm.memory,
        vm_name=vm.name,
        vm_uuid=vm.uuid,
        source=vm.host or "",
        source_name=placement.source_name,
        destination=dest.ref,
        destination_name=dest.name,
        options=_placed(options if options is not None else MigrationOptions(), placement),
        ping_address=vm.ips[0] if vm.ips else None,
        ping_interval=ping_interval,
        ping_port=ping_port,
        ping_method=ping_method,
    )


def _placed(options: MigrationOptions, placement: Placement) -> MigrationOptions:
    """The batch's options, with the disks this VM's placement copies (storage motion) and the
    migration network it was pre-checked over: the move is the one the plan checked."""
    update: dict[str, object] = {}
    if placement.disk_srs:
        update["disk_srs"] = placement.disk_srs
    if placement.network is not None:
        update["network"] = placement.network
    return options.model_copy(update=update) if update else options


@dataclass
class _Running:
    """One move in its own thread; ``wake`` is set when it ends."""

    placement: Placement
    controller: MigrationController
    level: int
    started_s: float
    wake: threading.Event
    done: threading.Event = field(default_factory=threading.Event)
    last: MigrationProgress | None = None
    cancel_pending: bool = False
    error: str = ""  # what run() raised, if it did

    def start(self) -> None:
        name = f"migrate-{self.controller.plan.vm_name}"
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def _run(self) -> None:
        try:
            self.controller.run()
        except Exception as err:  # run() turns the hypervisor's failures into the record itself
            self.error = describe(err)
        finally:
            self.done.set()
            self.wake.set()


class BatchRunner:
    """Move every VM of ``plan`` (which must be ok) with controllers from ``make_controller``."""

    def __init__(
        self,
        backend: Backend,
        plan: Plan,
        make_controller: MakeController,
        rule: ConcurrencyRule,
        *,
        pool: str,
        on_event: Callable[[BatchEvent], None] | None = None,
        options: MigrationOptions | None = None,
        ping_interval: float = DEFAULT_INTERVAL,
        ping_port: int | None = None,
        ping_method: str = "auto",
        poll_s: float = POLL_S,
    ) -> None:
        if not plan.ok:
            raise ValueError("the plan has blocked VMs: " + "; ".join(p.vm.name for p in plan.blocked))
        self.backend = backend
        self.plan = plan
        self.make_controller = make_controller
        self.rule = rule
        self.pool = pool
        self.on_event = on_event
        self.options = options
        self.ping_interval = ping_interval
        self.ping_port = ping_port
        self.ping_method = ping_method
        self.poll_s = poll_s
        self.level = 0
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._cancelled = False
        self._halt = ""  # halt(): why no more moves start (the running ones are left to end)
        self._running: list[_Running] = []
        self._answers: list[tuple[str, str]] = []  # cancel answers for run() to send on
        self._t0 = time.monotonic()

    # --- any thread ---------------------------------------------------------------------------

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def running(self) -> list[MigrationController]:
        with self._lock:
            return [r.controller for r in self._running]

    def cancel(self) -> list[str]:
        """Start no more moves and ask each running one to stop; what each answered, in words.
        A move still being started is asked again as soon as it can be cancelled."""
        with self._lock:
            self._cancelled = True
            running = list(self._running)
        answers = [(r.placement.vm.name, self._ask_cancel(r)) for r in running]
        answers = [(vm, a) for vm, a in answers if a]
        with self._lock:
            self._answers.extend(answers)
        self._wake.set()
        return [a for _, a in answers]

    def halt(self, reason: str) -> None:
        """Start no more moves; the running ones go on to their end (nothing is asked of them)."""
        with self._lock:
            self._halt = self._halt or reason
        self._wake.set()

    # --- the running thread -------------------------------------------------------------------

    def run(self) -> Summary:
        self._t0 = time.monotonic()
        waiting = list(self.plan.moves)
        lines: dict[str, MoveLine] = {}
        finished: list[MoveFigures] = []
        decision = self.rule.first(len(waiting))
        levels = [decision]
        self.level = max(1, decision.level)
        self._emit(LevelChanged(decision))
        stop_reason = ""
        peak = 0
        while True:
            if self._cancelled and not stop_reason:
                stop_reason = "cancelled"
                self._emit(Stopping(f"{stop_reason}: no more moves start"))
            if self._halt and not stop_reason:
                stop_reason = self._halt
                running = len(self._running)
                rest = {0: "", 1: "; the running one finishes"}.get(running, f"; the {running} running ones finish")
                self._emit(Stopping(f"{stop_reason}: no more moves start{rest}"))
            while not stop_reason and not self._cancelled and waiting and len(self._running) < self.level:
                placement = waiting.pop(0)
                failure = self._start(placement)
                if failure is not None:
                    line, figures = failure
                    lines[placement.vm.ref] = line
                    finished.append(figures)
                    self._emit(MoveFinished(placement, line, figures, None))
                    stop_reason = f"{placement.vm.name} could not start"
                    self._emit(Stopping(f"{stop_reason} ({line.error}): no more moves start"))
            peak = max(peak, len(self._running))
            if not self._running:
                break
            self._wake.wait(self.poll_s)
            self._wake.clear()
            self._progress()
            for r in self._collect():
                line, figures = self._figures(r)
                lines[r.placement.vm.ref] = line
                finished.append(figures)
                self._emit(MoveFinished(r.placement, line, figures, r.controller.record))
                if not line.moved and not stop_reason:
                    stop_reason = "cancelled" if self._cancelled else f"the move of {line.vm} {line.outcome}"
                    running = len(self._running)
                    rest = {0: "", 1: "; the running one finishes"}.get(running, f"; the {running} running ones finish")
                    self._emit(Stopping(f"{stop_reason}: no more moves start{rest}"))
                left = len(waiting) + len(self._running)
                decision = self.rule.next(self.level, finished, left)
                if decision.level != self.level:
                    decision = Decision(max(1, decision.level), self.level, decision.reason)
                    self.level = decision.level
                    levels.append(decision)
                    self._emit(LevelChanged(decision))
        for placement in waiting:
            lines[placement.vm.ref] = _not_started(placement, stop_reason)
        summary = Summary(
            lines=tuple(lines[p.vm.ref] for p in self.plan.moves),
            seconds=time.monotonic() - self._t0,
            levels=tuple(levels),
            most_at_once=peak,
            cancelled=self._cancelled,
            stop_reason=stop_reason,
        )
        self._emit(BatchDone(summary))
        return summary

    def _start(self, placement: Placement) -> tuple[MoveLine, MoveFigures] | None:
        """Start one move; a line and figures instead when it cannot even start."""
        plan = migration_plan(
            self.pool,
            placement,
            options=self.options,
            ping_interval=self.ping_interval,
            ping_port=self.ping_port,
            ping_method=self.ping_method,
        )
        started = time.monotonic() - self._t0
        try:
            controller = self.make_controller(self.backend, plan)
            controller.claim()
        except (MigrationBusy, BackendError, OSError, ValueError) as err:
            line = MoveLine(
                vm=plan.vm_name,
                source=plan.source_name,
                destination=plan.destination_name,
                outcome="failed",
                now_on=plan.source_name,
                error=describe(err) if not isinstance(err, MigrationBusy) else str(err),
            )
            return line, self._figures_of(line, placement, started, self.level)
        run = _Running(placement, controller, self.level, started, self._wake)
        with self._lock:
            self._running.append(run)
            # a cancel() that came after the loop's check did not see this move: ask it next poll
            run.cancel_pending = self._cancelled
        run.start()
        self._emit(MoveStarted(placement, controller, self.level))
        return None

    def _progress(self) -> None:
        with self._lock:
            running = list(self._running)
        for r in running:
            p = r.controller.progress
            if p is not r.last:
                r.last = p
                self._emit(MoveProgress(r.placement, r.controller, p))
            if r.cancel_pending and not r.controller.ended:
                answer = self._ask_cancel(r)
                if answer:
                    self._emit(CancelAnswer(r.placement.vm.name, answer))
        with self._lock:
            answers, self._answers = self._answers, []
        for vm, answer in answers:
            self._emit(CancelAnswer(vm, answer))

    def _collect(self) -> list[_Running]:
        with self._lock:
            done = [r for r in self._running if r.done.is_set()]
            self._running = [r for r in self._running if r not in done]
        return done

    def _ask_cancel(self, r: _Running) -> str:
        c, name = r.controller, r.placement.vm.name
        try:
            c.cancel(queue=False)  # a move still starting is asked again below, once it can be
        except CancelRefused as err:
            # still being started: ask again once the hypervisor says it can be cancelled
            starting = c.progress.phase == MigrationPhase.PREPARING and not c.ended
            r.cancel_pending = starting
            if starting:
                return ""
            return f"{name}: cannot cancel: {err}"
        except BackendError as err:
            r.cancel_pending = False
            return f"{name}: cancel failed: {describe(err)}"
        r.cancel_pending = False
        return f"{name}: cancel asked"

    def _figures(self, r: _Running) -> tuple[MoveLine, MoveFigures]:
        rec, plan = r.controller.record, r.controller.plan
        if rec is None:
            line = MoveLine(
                vm=plan.vm_name,
                source=plan.source_name,
                destination=plan.destination_name,
                outcome="failed",
                seconds=r.controller.elapsed_s(),
                error=r.error or "following the move stopped unexpectedly; check the pool",
            )
        else:
            line = MoveLine(
                vm=rec.vm,
                source=rec.source,
                destination=rec.destination,
                outcome=rec.result,
                now_on=rec.now_on,
                seconds=rec.duration_s,
                sent=rec.ping_sent,
                lost=rec.ping_lost,
                longest_gap_s=rec.ping_longest_gap_s,
                error=rec.error,
            )
        return line, self._figures_of(line, r.placement, r.started_s, r.level)

    def _figures_of(self, line: MoveLine, placement: Placement, started: float, level: int) -> MoveFigures:
        return MoveFigures(
            vm=line.vm,
            level=level,
            started_s=started,
            duration_s=line.seconds,
            memory=placement.vm.memory if line.moved else 0,
            longest_gap_s=line.longest_gap_s,
            lost=line.lost,
            interval=self.ping_interval,
            failed=not line.moved,
        )

    def _emit(self, event: BatchEvent) -> None:
        if self.on_event is not None:
            self.on_event(event)


def _not_started(placement: Placement, reason: str) -> MoveLine:
    dest = placement.destination
    return MoveLine(
        vm=placement.vm.name,
        source=placement.source_name,
        destination=dest.name if dest is not None else "",
        outcome="not started",
        now_on=placement.source_name,
        error=f"not started ({reason or 'stopped'})",
    )
