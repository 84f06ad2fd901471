"""Running a plan of many moves from a command (evacuate, migrate VM… HOST, host enable --restore):
the batch runner in a thread, its events printed, Ctrl-C turned into a cancel, the summary and the
exit code. What each command plans is its own; how a plan runs and reads is the same for all.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TextIO

from poolctl.audit import AuditLog, EvacuationRecord
from poolctl.backends.base import Backend
from poolctl.cli.pools import Loaded
from poolctl.errors import ExitCode
from poolctl.migration.batch import (
    BatchEvent,
    BatchRunner,
    CancelAnswer,
    LevelChanged,
    MoveFinished,
    MoveProgress,
    MoveStarted,
    Stopping,
)
from poolctl.migration.batch_summary import Summary
from poolctl.migration.controller import MigrationController, MigrationPlan
from poolctl.migration.many import Batch, Kind, batch_record, rule_for
from poolctl.migration.planner import Plan, plan_table
from poolctl.migration.words import clock
from poolctl.model import Host, MigrationPhase
from poolctl.safe_text import shown, shown_line

WATCH_S = 0.25


@dataclass(frozen=True)
class RunSettings:
    """How a command runs its moves: at once (``--batch``), shown live (``--watch``), pinged how."""

    batch: Batch = "auto"
    watch: bool = False
    interval: float = 0.1
    port: int | None = None
    outcome_wait: float = 600.0  # [migration] outcome_wait: contact lost mid-move, how long to keep asking


def print_plan(plan: Plan, out: TextIO) -> None:
    for line in plan_table(plan):
        print(f"  {line}", file=out)
    out.flush()


def print_refusal(plan: Plan, err: TextIO) -> None:
    head, *rest = plan.refusal()
    print(f"poolctl: {shown_line(head)}", file=err)
    for line in rest:
        print(shown_line(line), file=err)


@dataclass(frozen=True)
class Ran:
    summary: Summary | None  # None: stopped watching (a second Ctrl-C) before it ended
    code: ExitCode


class PlanRun:
    """One plan run on one pool, printed to ``out`` (progress) and ``err`` (stops, cancels)."""

    def __init__(
        self,
        pool: Loaded,
        plan: Plan,
        settings: RunSettings,
        *,
        out: TextIO,
        err: TextIO,
    ) -> None:
        self.pool, self.plan, self.settings = pool, plan, settings
        self.batch, self.watch = settings.batch, settings.watch
        self.out, self.err = out, err
        self.names = {h.ref: h.name for h in pool.inventory.hosts}
        secret = pool.config.password.get_secret_value() if pool.config.password else ""
        self.secrets = [secret]
        self.runner = BatchRunner(
            pool.backend,
            plan,
            self._controller,
            rule_for(settings.batch),
            pool=pool.config.name,
            on_event=self._event,
            ping_interval=settings.interval,
            ping_port=settings.port,
        )
        self._t0 = time.monotonic()
        self._print_lock = threading.Lock()
        self._phases: dict[str, MigrationPhase] = {}
        self._percent: dict[str, int] = {}
        self._done = 0

    def _controller(self, backend: Backend, plan: MigrationPlan) -> MigrationController:
        plan = replace(plan, outcome_wait_s=self.settings.outcome_wait)  # as `poolctl migrate` does
        return MigrationController(
            backend, plan, secrets=self.secrets, host_name=lambda ref: self.names.get(ref, ref) if ref else ""
        )

    # --- printing (the runner's thread) ---------------------------------------------------------

    def _say(self, text: str, *, to_err: bool = False) -> None:
        with self._print_lock:
            if self.watch and not to_err:
                self.out.write("\r\x1b[K")
            print(text, file=self.err if to_err else self.out, flush=True)

    def _stamp(self) -> str:
        return f"  {clock(time.monotonic() - self._t0):>5}"

    def _event(self, e: BatchEvent) -> None:
        if isinstance(e, LevelChanged):
            self._say(f"{self._stamp()}  batch: {shown_line(e.decision.reason)}")
        elif isinstance(e, MoveStarted):
            p = e.controller.plan
            ping = (
                f", pinging {p.ping_address} every {p.ping_interval:g} s" if p.ping_address else ", no address to ping"
            )
            self._say(f"{self._stamp()}  {shown(p.vm_name)}: moving {p.route}{ping}")
        elif isinstance(e, MoveProgress):
            self._progress(e)
        elif isinstance(e, MoveFinished):
            self._done += 1
            self._phases.pop(e.line.vm, None)
            self._percent.pop(e.line.vm, None)
            self._say(
                f"{self._stamp()}  {e.line.vm}: {_outcome_words(e.line.outcome)} ({self._done}/{len(self.plan.moves)})"
            )
        elif isinstance(e, Stopping):
            self._say(f"poolctl: {shown_line(e.reason)}", to_err=True)
        elif isinstance(e, CancelAnswer):
            self._say(f"poolctl: {e.message}", to_err=True)

    def _progress(self, e: MoveProgress) -> None:
        name, p = e.placement.vm.name, e.progress
        pct = round(100 * p.fraction) if p.fraction is not None else -1
        if self.watch:
            self._percent[name] = pct
            line = ", ".join(f"{vm} {v}%" if v >= 0 else vm for vm, v in self._percent.items())
            with self._print_lock:
                self.out.write(f"\r{self._stamp()}  moving: {line}  ({self._done}/{len(self.plan.moves)} done)\x1b[K")
                self.out.flush()
            return
        if p.phase.terminal or self._phases.get(name) == p.phase:
            return
        self._phases[name] = p.phase
        self._say(f"{self._stamp()}  {shown(name)}: {p.phase.value}" + (f" {pct}%" if pct >= 0 else ""))

    # --- running (the main thread) ----------------------------------------------------------

    def run(self) -> Ran:
        """Run to the end; Ctrl-C cancels (exit 6), a second one stops watching (exit 130)."""
        results: list[Summary] = []
        ended = threading.Event()

        def work() -> None:
            try:
                results.append(self.runner.run())
            finally:
                ended.set()

        self._t0 = time.monotonic()
        threading.Thread(target=work, name="batch", daemon=True).start()
        interrupts = 0
        # Event.wait, not Thread.join: a Ctrl-C inside join() can leave is_alive() wrongly False.
        while not ended.is_set():
            try:
                ended.wait(WATCH_S)
            except KeyboardInterrupt:
                interrupts += 1
                if interrupts >= 2:
                    for c in self.runner.running():
                        c.abandon("poolctl was interrupted twice; the hypervisor carried on with the move")
                    self._say(
                        "poolctl: stopped watching; the hypervisor carries on with the running moves", to_err=True
                    )
                    return Ran(None, ExitCode.INTERRUPTED)
                self._say("\npoolctl: Ctrl-C: cancelling the running moves, starting no more…", to_err=True)
                self.runner.cancel()
        if self.watch:
            self.out.write("\r\x1b[K")
        summary = results[0] if results else None
        if summary is None:
            return Ran(None, ExitCode.FAILED)
        for text in summary.text_lines():
            print(text, file=self.out)
        self.out.flush()
        if summary.cancelled or interrupts:
            return Ran(summary, ExitCode.CANCELLED)
        if not summary.ok and all(line.moved or line.outcome == "unknown" for line in summary.lines):
            return Ran(summary, ExitCode.UNKNOWN)  # nothing failed that poolctl knows of
        return Ran(summary, ExitCode.OK if summary.ok else ExitCode.FAILED)

    def record(self, kind: Kind, host: Host, ran: Ran, asked: datetime, reason: str = "") -> EvacuationRecord:
        """The audit record of the whole run (its moves have theirs from the controllers)."""
        return batch_record(
            kind,
            self.pool.config.name,
            host,
            ran.summary,
            asked=asked,
            batch=self.batch,
            reason=reason,
            unfinished=[p.vm.name for p in self.plan.moves],
            elapsed_s=time.monotonic() - self._t0,
        )


def write_record(record: EvacuationRecord, err: TextIO) -> None:
    try:
        AuditLog().append(record)
    except OSError as exc:
        print(f"poolctl: warning: {exc}", file=err)


def now() -> datetime:
    return datetime.now(UTC)


def _outcome_words(outcome: str) -> str:
    return {"success": "moved", "not started": "not started"}.get(outcome, outcome)
