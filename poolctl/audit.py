"""The migration audit log: one JSON object per line, appended when a migration ends, and one
per evacuation (``"kind": "evacuation"``) besides the lines of its VMs' moves.

Where: ``$POOLCTL_STATE_DIR/migrations.jsonl`` when that is set (tests, odd setups), else
``platformdirs.user_state_path("poolctl")/migrations.jsonl`` (``~/.local/state/poolctl``).
A record never holds a password or a session id: only names, outcomes and figures, and the
hypervisor's error text with every known secret blanked out.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

STATE_ENV = "POOLCTL_STATE_DIR"
LOG_NAME = "migrations.jsonl"
READ_LIMIT = 2000  # newest entries the history screen reads; older ones stay in the file


class MigrationRecord(BaseModel):
    """What happened to one migration, as the audit log and the history screen keep it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str
    time: str  # ISO 8601 UTC, when the move was asked for
    pool: str
    vm: str  # name
    vm_uuid: str = ""
    source: str  # host name
    destination: str  # host name
    # "unfinished": poolctl stopped watching (it quit) while the hypervisor was still moving the VM;
    # "refused": the hypervisor refused to start it (the VM was busy…): nothing moved;
    # "unknown": contact with the pool was lost: a later line with the same id completes it
    result: Literal["success", "failed", "cancelled", "refused", "unfinished", "unknown"]
    now_on: str = ""  # host name where the VM runs after the move, when known
    duration_s: float = 0.0
    ping_address: str = ""
    ping_method: str = ""
    ping_sent: int = 0
    ping_lost: int = 0
    ping_longest_gap_s: float | None = None
    ping_error: str = ""
    downtime_ms: float | None = None  # as the hypervisor reports it
    error: str = ""  # the hypervisor's words when not a success
    options: dict[str, object] = {}
    tuning: list[str] = []  # each setting chosen, with its reason (poolctl.migration.tuner)
    predicted: dict[str, object] = {}  # poolctl.migration.predict.Prediction.as_record()
    # the same figures as measured: duration_s, passes, pause_ms, lost_probes, copied_mib,
    # copy_rate_mib_s (the tuner's link estimate for the next move between the pair)
    measured: dict[str, object] = {}


class EvacuationRecord(BaseModel):
    """One evacuation (or bulk move) as a whole; each of its moves has a ``MigrationRecord`` too.
    Readers of migrations (``AuditLog.read``, the history screen) skip these lines."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    kind: Literal["evacuation", "bulk move", "restore"] = "evacuation"
    id: str
    time: str  # ISO 8601 UTC, when it was asked for
    pool: str
    host: str  # the host emptied (evacuation) or filled (bulk move, restore), by name
    host_uuid: str = ""
    # "refused": the plan had blocked VMs, nothing moved
    result: Literal["success", "failed", "cancelled", "refused", "unfinished"]
    moved: list[str] = []  # VM names, in plan order
    not_moved: list[str] = []
    duration_s: float = 0.0
    batch: str = ""  # "auto" or N, as asked
    levels: list[str] = []  # every concurrency decision, in words
    most_at_once: int = 0
    ping_lost: int = 0
    ping_longest_gap_s: float | None = None
    reason: str = ""  # why it stopped early, or why it was refused


OTHER_KINDS = ("evacuation", "bulk move", "restore")  # ``kind`` values that are not one migration


def state_dir() -> Path:
    override = os.environ.get(STATE_ENV)
    if override:
        return Path(override)
    from platformdirs import user_state_path

    return user_state_path("poolctl")


def default_log_path() -> Path:
    return state_dir() / LOG_NAME


class AuditLog:
    """Append-only JSON lines; safe for several poolctl processes appending at once."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_log_path()

    def append(self, record: MigrationRecord | EvacuationRecord) -> None:
        """Write one line. Raises ``OSError`` (naming the file) when it cannot."""
        line = (json.dumps(record.model_dump(mode="json"), ensure_ascii=False, sort_keys=True) + "\n").encode()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # One write() on an O_APPEND descriptor: lines from concurrent writers never interleave.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot write the migration log {self.path}: {exc.strerror or exc}") from None

    def read(self, limit: int = READ_LIMIT) -> tuple[list[MigrationRecord], list[str]]:
        """(records newest first, problems) — an unreadable line is named, never fatal."""
        try:
            lines = self.path.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return [], []
        except OSError as exc:
            return [], [f"cannot read {self.path}: {exc.strerror or exc}"]
        records: list[MigrationRecord] = []
        problems: list[str] = []
        first = max(0, len(lines) - limit)
        for number, line in enumerate(lines[first:], start=first + 1):
            if not line.strip() or _other_kind(line):
                continue
            try:
                records.append(MigrationRecord.model_validate_json(line))
            except ValidationError as exc:
                problems.append(f"{self.path}:{number}: unreadable entry ({exc.errors()[0]['msg']})")
        # A move whose outcome was unknown for a while has a second line once it is known:
        # the last line of an id is the truth.
        last = {r.id: i for i, r in enumerate(records)}
        records = [r for i, r in enumerate(records) if last[r.id] == i]
        records.reverse()
        return records, problems

    def read_evacuations(self, limit: int = READ_LIMIT) -> list[EvacuationRecord]:
        """The evacuation (and bulk move) records, newest first; unreadable ones left out."""
        try:
            lines = self.path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return []
        out: list[EvacuationRecord] = []
        for line in lines[-limit:]:
            if _other_kind(line):
                try:
                    out.append(EvacuationRecord.model_validate_json(line))
                except ValidationError:
                    continue
        out.reverse()
        return out


def _other_kind(line: str) -> bool:
    """A line of the log that is not one migration (an evacuation's own record)."""
    if '"kind"' not in line:  # cheap: a migration record has no such key
        return False
    try:
        kind = json.loads(line).get("kind")
    except (ValueError, AttributeError):
        return False
    return kind in OTHER_KINDS
