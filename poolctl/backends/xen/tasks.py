"""XAPI tasks: wait for one, read its progress, clean it up."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import XenAPI

from poolctl.backends.xen.errors import failure_parts, quote
from poolctl.backends.xen.translate import Record
from poolctl.model import MigrationPhase, MigrationProgress

PENDING = ("pending", "cancelling")

Xapi = Any  # a session's ``xenapi`` proxy (``xapi.task.get_record(...)``), untyped like the whole SDK


def destroy_quietly(xapi: Xapi, task: str) -> None:
    try:
        xapi.task.destroy(task)
    except Exception:
        pass


def wait_task(xapi: Xapi, task: str, poll_max: float = 0.5) -> str:
    """Block until ``task`` ends; its result on success, else raise its error as a ``Failure``."""
    delay = 0.05
    try:
        while True:
            rec = xapi.task.get_record(task)
            status = str(rec.get("status", "")).lower()
            if status not in PENDING:
                break
            time.sleep(delay)
            delay = min(delay * 2, poll_max)
    finally:
        destroy_quietly(xapi, task)
    if status == "success":
        result: str = rec.get("result", "")
        return result
    if status == "cancelled":
        raise XenAPI.Failure(["TASK_CANCELLED", task])
    raise XenAPI.Failure(list(rec.get("error_info") or ["INTERNAL_ERROR", f"task ended with status {status!r}"]))


def migration_progress(rec: Record, secrets: Iterable[str]) -> MigrationProgress:
    """One progress item from a ``VM.pool_migrate`` task record."""
    status = str(rec.get("status", "")).lower()
    try:
        fraction = min(max(float(rec.get("progress", 0.0)), 0.0), 1.0)
    except (TypeError, ValueError):
        fraction = None
    cancellable = "cancel" in (rec.get("allowed_operations") or ())
    if status == "success":
        return MigrationProgress(phase=MigrationPhase.DONE, fraction=1.0)
    if status == "cancelled":
        return MigrationProgress(phase=MigrationPhase.CANCELLED, fraction=fraction, message="cancelled")
    if status == "failure":
        code, params = failure_parts(XenAPI.Failure(list(rec.get("error_info") or ["UNKNOWN"])), secrets)
        phase = MigrationPhase.CANCELLED if code == "TASK_CANCELLED" else MigrationPhase.FAILED
        return MigrationProgress(phase=phase, fraction=fraction, message=f"XAPI: {quote(code, params)}")
    if status == "cancelling":
        return MigrationProgress(phase=MigrationPhase.COPYING, fraction=fraction, message="cancelling")
    # XAPI does not name its phases: no progress yet is preparing; once cancel is no longer
    # allowed the move is past its point of no return.
    if not fraction:
        phase = MigrationPhase.PREPARING
    elif cancellable:
        phase = MigrationPhase.COPYING
    else:
        phase = MigrationPhase.FINISHING
    return MigrationProgress(phase=phase, fraction=fraction, cancellable=cancellable)
