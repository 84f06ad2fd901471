"""Prediction against measurement: the measured figures of a move, and the words that set them
side by side (CLI, migration panel). The keys are those of ``Prediction.as_record``."""

from __future__ import annotations

from poolctl.audit import MigrationRecord
from poolctl.model import MigrationResult
from poolctl.ping.stats import PingStats


def measured(
    result: MigrationResult | None,
    stats: PingStats | None,
    interval: float,
    memory_bytes: int = 0,
    setup_s: float = 0.0,
) -> dict[str, object]:
    """The figures a prediction is held against (the keys of ``Prediction.as_record``, and more).

    When the hypervisor does not report the copy's throughput (XAPI does not), the move's own is
    kept: ``memory_bytes`` over its duration less the ``setup_s`` the predictor adds, so the next
    prediction between the pair starts from what this one took (0: not known, or the move also
    copied disks, whose time is not the memory's)."""
    if result is None:
        return {}
    out: dict[str, object] = {"duration_s": round(result.duration_s, 2)}
    if result.passes is not None:
        out["passes"] = result.passes
    if result.downtime_ms is not None:
        out["pause_ms"] = round(result.downtime_ms, 1)
    if stats is not None and stats.sent:
        out["lost_probes"] = stats.lost
        out["longest_gap_s"] = round(stats.longest_gap_s, 3)
    if result.copied_bytes:
        out["copied_mib"] = round(result.copied_bytes / (1 << 20), 1)
    if result.copy_rate_bytes_s:
        out["copy_rate_mib_s"] = round(result.copy_rate_bytes_s / (1 << 20), 1)
    elif memory_bytes and result.duration_s > setup_s and not result.escalations:
        out["copy_rate_mib_s"] = round(memory_bytes / (1 << 20) / (result.duration_s - setup_s), 1)
        out["copy_rate_from"] = "memory over the move's duration"
    if result.post_copy:
        out["post_copy"] = True
    if result.escalations:
        out["escalations"] = list(result.escalations)
    return out


def prediction_line(rec: MigrationRecord) -> str:
    """Prediction and measurement in one line, for a panel: '' when the record has no prediction."""
    p, m = rec.predicted, rec.measured
    if not p or not m:
        return ""

    def side(d: dict[str, object]) -> str:
        dur, pause, lost = d.get("duration_s"), d.get("pause_ms"), d.get("lost_probes")
        return ", ".join(
            (
                f"{dur:.1f} s" if isinstance(dur, int | float) else "–",
                f"pause {pause:.0f} ms" if isinstance(pause, int | float) else "pause –",
                f"{lost:g} lost" if isinstance(lost, int | float) else "– lost",
            )
        )

    return f"predicted {side(p)} · measured {side(m)}"


def predicted_vs_measured(rec: MigrationRecord) -> list[str]:
    """Side by side, one line per figure both sides have: what the prediction said, what happened."""
    p, m = rec.predicted, rec.measured
    if not p or not m:
        return []
    rows = [
        ("duration", "duration_s", "{:.1f} s"),
        ("pre-copy passes", "passes", "{}"),
        ("pause", "pause_ms", "{:.0f} ms"),
        ("lost probes", "lost_probes", "{:g}"),
    ]
    out = [f"  {'':16}{'predicted':>11}{'measured':>11}"]
    for label, key, fmt in rows:
        a, b = p.get(key), m.get(key)
        if a is None and b is None:
            continue
        left = fmt.format(a) if isinstance(a, int | float) else "–"
        right = fmt.format(b) if isinstance(b, int | float) else "–"
        out.append(f"  {label:16}{left:>11}{right:>11}")
    notes = m.get("escalations")
    for note in notes if isinstance(notes, list) else ():
        out.append(f"  during the move: {note}")
    return out
