"""Words shared by the TUI's migration panels and the CLI: a clock, a finished move's headline,
its ping figures and downtime, and why a move can no longer be cancelled."""

from __future__ import annotations

from poolctl.audit import MigrationRecord
from poolctl.model import MigrationProgress
from poolctl.safe_text import shown, shown_line


def clock(seconds: float | None) -> str:
    """``65.2`` -> ``"1:05"``."""
    if seconds is None:
        return "–"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def headline(rec: MigrationRecord) -> str:
    vm, now_on = shown(rec.vm), shown(rec.now_on)
    where = (
        f"{vm} still runs on {now_on}"
        if rec.now_on == rec.source
        else f"{vm} now runs on {now_on}"
        if rec.now_on
        else f"{vm} is not running on any host (as far as the hypervisor says)"
    )
    if rec.result == "success":
        return f"Migration complete in {rec.duration_s:.1f} s — {where}"
    if rec.result == "unfinished":
        return f"Stopped watching after {rec.duration_s:.1f} s — the outcome is not known to poolctl"
    if rec.result == "unknown":
        return f"Outcome unknown after {rec.duration_s:.1f} s — poolctl could not read where {vm} runs"
    word = rec.result if rec.result in ("cancelled", "refused") else "failed"
    return f"Migration {word} after {rec.duration_s:.1f} s — {where}"


def ping_summary(rec: MigrationRecord, *, with_address: bool = True) -> str:
    if not rec.ping_sent:
        return f"no ping: {shown_line(rec.ping_error)}" if rec.ping_error else "no ping"
    gap = f"{rec.ping_longest_gap_s:.2f} s" if rec.ping_longest_gap_s is not None else "–"
    to = f" to {rec.ping_address}" if with_address else ""
    return f"pings{to}: {rec.ping_sent} sent, {rec.ping_lost} lost, longest gap {gap}"


def downtime_text(rec: MigrationRecord, backend_name: str = "") -> str:
    if rec.downtime_ms is not None:
        return f"hypervisor-reported downtime {rec.downtime_ms:.0f} ms"
    who = f"the {backend_name} backend" if backend_name else "this backend"
    return f"hypervisor downtime: not reported by {who}"


def cancel_refusal(vm_name: str, progress: MigrationProgress) -> str:
    return (
        f"the migration of {vm_name} is in its {progress.phase.value} phase, past the point where "
        "the hypervisor can still cancel it"
    )
