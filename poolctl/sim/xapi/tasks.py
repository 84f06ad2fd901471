"""Tasks: pending -> success / failure / cancelled, progress, cancellation (TaskHelper semantics).

Cancellation follows XAPI: task.cancel records `cancel` in current_operations and signals the
worker; a worker honours it only while the task is cancellable (allowed_operations has `cancel`).
Once the worker has set the task not cancellable, a cancel is accepted but has no effect, as in
xapi (xenopsd logs "Task ... is not cancellable" and carries on).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from . import errors, schema, wire
from .db import NULL_REF, Database, new_ref

log = logging.getLogger(__name__)
CLS = "task"


class Tasks:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._cancel: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def create(self, label: str, host: str = NULL_REF, description: str = "") -> str:
        ref = self.db.create(
            CLS,
            schema.new_record(
                CLS, name_label=label, name_description=description, created=schema.now(), resident_on=host
            ),
        )
        with self._lock:
            self._cancel[ref] = threading.Event()
        return ref

    def spawn(self, name: str, host: str, run: Callable[[str], object]) -> str:
        """Async.<name>: a task on `host` whose worker thread calls run(task ref)."""
        ref = self.create(f"Async.{name}", host)
        worker = threading.Thread(target=self._run, args=(ref, name, run), name=f"xapisim-task-{name}", daemon=True)
        worker.start()
        return ref

    def _run(self, ref: str, name: str, run: Callable[[str], object]) -> None:
        try:
            result = run(ref)
        except errors.XapiError as exc:
            self.fail(ref, exc)
        except Exception as exc:  # a bug in the simulator: report it the way xapi does
            log.exception("task %s (%s) crashed", ref, name)
            self.fail(ref, errors.internal_error(f"{type(exc).__name__}: {exc}"))
        else:
            self.complete(ref, result)

    # -- state transitions (each a no-op unless pending, as in TaskHelper) ------------------
    def _pending(self, ref: str) -> bool:
        return self.db.exists(CLS, ref) and self.db.field(CLS, ref, "status") == "pending"

    def complete(self, ref: str, result: object) -> None:
        with self.db.lock:
            if self._pending(ref):
                self.db.set(
                    CLS,
                    ref,
                    allowed_operations=[],
                    finished=schema.now(),
                    progress=1.0,
                    result=wire.task_result(result),
                    status="success",
                )
        self._forget(ref)

    def fail(self, ref: str, exc: errors.XapiError) -> None:
        status = "cancelled" if exc.code == "TASK_CANCELLED" else "failure"
        with self.db.lock:
            if self._pending(ref):
                self.db.set(
                    CLS,
                    ref,
                    progress=1.0,
                    error_info=exc.description,
                    finished=schema.now(),
                    allowed_operations=[],
                    status=status,
                )
        self._forget(ref)

    def _forget(self, ref: str) -> None:
        with self._lock:
            self._cancel.pop(ref, None)

    def wait_any(self, refs: set[str]) -> list[str]:
        """Block until at least one of `refs` is no longer pending; return those that are not
        (a task destroyed meanwhile counts as finished)."""
        with self.db.cond:
            while not (done := [ref for ref in refs if not self._pending(ref)]):
                self.db.cond.wait(1.0)
            return done

    # -- used by workers ----------------------------------------------------------------------
    def set_progress(self, ref: str | None, value: float) -> None:
        if ref is not None and self._pending(ref):
            self.db.set(CLS, ref, progress=round(min(max(value, 0.0), 1.0), 4))

    def set_cancellable(self, ref: str | None, cancellable: bool) -> None:
        if ref is not None and self._pending(ref):
            self.db.set(CLS, ref, allowed_operations=["cancel"] if cancellable else [])

    def cancellable(self, ref: str | None) -> bool:
        return ref is not None and "cancel" in self.db.field(CLS, ref, "allowed_operations")

    def cancel_requested(self, ref: str | None) -> bool:
        with self._lock:
            flag = self._cancel.get(ref) if ref else None
        return flag is not None and flag.is_set()

    def check_cancelled(self, ref: str | None) -> None:
        """TaskHelper.exn_if_cancelling, honoured only while the task is cancellable."""
        if ref is not None and self.cancel_requested(ref) and self.cancellable(ref):
            raise errors.task_cancelled(ref)

    def sleep(self, ref: str | None, seconds: float) -> None:
        """Sleep, waking early (to raise TASK_CANCELLED) if a cancel arrives while cancellable."""
        deadline = time.monotonic() + seconds
        with self._lock:
            flag = self._cancel.get(ref) if ref else None
        while (remaining := deadline - time.monotonic()) > 0:
            if flag is None or (flag.is_set() and not self.cancellable(ref)):
                time.sleep(remaining)
                break
            flag.wait(remaining)
            self.check_cancelled(ref)
        self.check_cancelled(ref)

    # -- API-facing -----------------------------------------------------------------------------
    def cancel(self, ref: str, by: str | None = None) -> None:
        """task.cancel; `by` is the task of the (async) cancel call itself, if any."""
        with self.db.lock:
            self.db.get(CLS, ref)
            if not self._pending(ref):
                return
            self.db.set(CLS, ref, current_operations={by or new_ref(): "cancel"})
        with self._lock:
            flag = self._cancel.get(ref)
        if flag is not None:
            flag.set()

    def destroy(self, ref: str) -> None:
        with self.db.lock:
            status = self.db.get(CLS, ref)["status"]
            if status == "pending":
                self.db.set_key(CLS, ref, "current_operations", "task", "destroy")
            else:
                self.db.destroy(CLS, ref)
