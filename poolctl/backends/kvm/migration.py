"""Live migration's handle: the libvirt call runs in the handle's thread; progress comes from
polling ``jobStats()`` on the source every 0.5 s (the sequence of the lab reference), read
as poolctl's progress by progress.py. What refuses a move and the call's flags: migration_start.py.

The migrate call runs on a connection of its own to the source: in the lab, every other
call on the connection running it (jobStats, state, the watcher's refresh) waited up to
4 s behind it, which froze progress and, through the backend lock, the whole pool."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import libvirt

from poolctl.backends.base import BackendError, CancelRefused, MigrationHandle, SwitchoverModel
from poolctl.backends.kvm.errors import operation_error, words
from poolctl.backends.kvm.events import HostStale, Notify
from poolctl.backends.kvm.hostconn import HostConn
from poolctl.backends.kvm.lostcontact import Learner
from poolctl.backends.kvm.progress import JobProgress
from poolctl.backends.kvm.steering import Steering
from poolctl.backends.kvm.whereabouts import completed_stats, conn_alive, contact_lost, where_after_failure
from poolctl.model import MigrationOptions, MigrationPhase, MigrationProgress, MigrationResult

log = logging.getLogger("poolctl.backends.kvm")

POLL_S = 0.5
OUT_OF_CONTACT_S = 5.0  # polls failing this long: the move's outcome is said to be unknown (still trying)
# Measured on the QEMU lab (tests/lab/README.md): libvirt's prepare and finish ~1.8 s besides the
# copy; 5-20 ms of device state and 10-20 ms of libvirt resuming the guest on the destination;
# a switch to post-copy pauses the guest 65-150 ms (libvirt resumes it, not QEMU); uncapped,
# QEMU's last pass took 50-142 ms for a 10 ms limit (idle) and 15-40 ms for 5 ms (busy).
SWITCHOVER = SwitchoverModel(
    setup_s=1.8,
    device_state_ms=10.0,
    resume_ms=15.0,
    postcopy_switch_ms=100.0,
    default_downtime_ms=300.0,
    uncapped_overshoot_ms=50.0,
)


@dataclass(frozen=True)
class MigrationSetup:
    """What a migration needs of its pool, handed over by the backend."""

    notify: Notify  # the pool's event queue: hosts to reload when the move starts and ends
    migrating: set[str]  # uuids moving through us, shown as a current operation until the end
    p2p: bool  # the source daemon drives the move (else this process does, client-side)
    migration_uris: Mapping[str, str]  # a destination's URI as the source daemon reaches it, where it differs
    timeout_s: float  # a migration still running after this is aborted


class KvmMigration(MigrationHandle):
    def __init__(
        self,
        setup: MigrationSetup,
        src: HostConn,
        dst: HostConn,
        uuid: str,
        name: str,
        dom: libvirt.virDomain,
        flags: int,
        params: dict[str, Any],
        options: MigrationOptions,
    ):
        super().__init__(f"vm:{uuid}", src.ref, dst.ref)
        self._setup = setup
        self._src, self._dst = src, dst
        self._uuid, self._name = uuid, name
        self._dom = dom  # on the source's main connection: polls, abort, settings
        self._mig_conn: libvirt.virConnect | None = None  # the migrate call's own (start())
        self._mig_dom: libvirt.virDomain | None = None
        self._flags, self._params = flags, params
        self._done = threading.Event()
        self._stop = threading.Event()  # stop_following()
        self._result: MigrationResult | None = None
        self._cancel_requested = False
        self._timed_out = False
        self._steering = Steering(options, name)
        self._reading = JobProgress(dst.name)  # jobStats read as progress, poll after poll
        self._t0 = 0.0
        self._timer: threading.Timer | None = None
        self._best = 0.0  # the furthest fraction shown: where contact was lost
        self._learner = Learner(src, dst, uuid, name, self._stop)  # after the call lost its connection
        self._poll_conn: libvirt.virConnect | None = None  # ours, for polls once contact is back

    # -- the libvirt call, in our own thread ---------------------------------------------
    def start(self) -> None:
        self._open_call_connection()
        self._t0 = time.monotonic()
        self._src.migration_iteration.pop(self._uuid, None)
        self._setup.migrating.add(self._uuid)
        self._setup.notify(HostStale(self._src.uri))  # shows "migrate" as a current operation
        self._steering.set_max_downtime(self._dom)
        self._timer = threading.Timer(self._setup.timeout_s, self._on_timeout)
        self._timer.daemon = True
        self._timer.start()
        threading.Thread(target=self._run, name=f"kvm-migrate-{self._name}", daemon=True).start()

    def _run(self) -> None:
        error: libvirt.libvirtError | None = None
        new_dom = None
        lost = False
        try:
            new_dom = self._call()
        except libvirt.libvirtError as err:
            error = err
            lost = contact_lost(self._mig_conn)
        except Exception as err:
            error = libvirt.libvirtError(f"{type(err).__name__}: {err}")
        finally:
            if self._timer is not None:
                self._timer.cancel()
            self._close_call_connection()
        try:
            if lost and error is not None:
                try:
                    learnt = self._learn(error)
                    self._result = None if learnt is None else self._settled(learnt)
                finally:
                    if self._poll_conn is not None:
                        with contextlib.suppress(libvirt.libvirtError):
                            self._poll_conn.close()
            else:
                self._result = self._settled(self._finish(error, new_dom))
        finally:
            self._setup.migrating.discard(self._uuid)
            for hc in (self._src, self._dst):
                self._setup.notify(HostStale(hc.uri))
            self._done.set()

    def _call(self) -> libvirt.virDomain | None:
        """The migrate call itself; the domain on the destination when libvirt hands it back."""
        dom = self._mig_dom
        if dom is None:
            raise libvirt.libvirtError("the migration's own connection to the source is not open")
        if self._setup.p2p:
            # The source daemon talks to the destination's daemon itself.
            uri = self._setup.migration_uris.get(self._dst.uri, self._dst.uri)
            dom.migrateToURI3(uri, self._params, self._flags | libvirt.VIR_MIGRATE_PEER2PEER)
            return None
        return dom.migrate3(self._dst.conn, self._params, self._flags)

    def _open_call_connection(self) -> None:
        try:
            conn = self._src.open_side()
        except BackendError as err:
            raise type(err)(
                f"cannot migrate VM '{self._name}': {err.message}", code=err.code, host=self._src.name
            ) from None
        try:
            self._mig_dom = conn.lookupByUUIDString(self._uuid)
        except libvirt.libvirtError as err:
            conn.close()
            raise operation_error("migrate", f"VM '{self._name}'", self._src.name, err) from None
        self._mig_conn = conn

    def _close_call_connection(self) -> None:
        # The domain object holds the connection open: drop it first.
        conn, self._mig_dom, self._mig_conn = self._mig_conn, None, None
        if conn is not None:
            try:
                conn.close()
            except libvirt.libvirtError:
                pass

    def _settled(self, result: MigrationResult) -> MigrationResult:
        """The outcome, however it was learnt (the call's end or reading the hosts after lost
        contact), once what the move left behind is dealt with; a subclass's hook."""
        return result

    def _finish(self, error: libvirt.libvirtError | None, new_dom: libvirt.virDomain | None) -> MigrationResult:
        duration_s = round(time.monotonic() - self._t0, 3)
        if error is None:
            stats = completed_stats(self._src, self._dst, self._uuid, new_dom)
            copied = stats.get("memory_processed") or stats.get("data_processed")
            bps = stats.get("memory_bps")
            elapsed = stats.get("time_elapsed")
            if not bps and copied and elapsed:
                bps = copied / (elapsed / 1000)
            return MigrationResult(
                outcome="success",
                host=self.destination,
                downtime_ms=float(stats["downtime"]) if stats.get("downtime") is not None else None,
                duration_s=duration_s,
                vm=self.vm,
                source=self.source,
                destination=self.destination,
                copied_bytes=int(copied) if copied else None,
                copy_rate_bytes_s=float(bps) if bps else None,
                passes=int(stats["memory_iteration"]) if stats.get("memory_iteration") else None,
                post_copy=self._steering.postcopy,
                escalations=tuple(self._steering.escalations),
            )
        cancelled = self._cancel_requested and not self._timed_out
        if self._timed_out:
            what = f"was aborted after {self._setup.timeout_s:.0f} s (timeout)"
        elif cancelled:
            what = "was cancelled"
        else:
            what = "failed"
        text = (
            f"migration of VM '{self._name}' from {self._src.name} to {self._dst.name} {what}: "
            f"libvirt says: {words(error)}"
        )
        return MigrationResult(
            outcome="cancelled" if cancelled else "failed",
            host=where_after_failure((self._src, self._dst), self._uuid),
            error=text,
            duration_s=duration_s,
            vm=self.vm,
            source=self.source,
            destination=self.destination,
        )

    # -- after lost contact: how did the move end? ----------------------------------------
    def _learn(self, error: libvirt.libvirtError) -> MigrationResult | None:
        """None when poolctl stops following before the hosts tell."""
        ending = self._learner.learn(words(error), lambda: self._best, self.outcome_wait_s)
        if ending is None:
            return None
        verdict = ending.verdict
        host = {"source": self._src.ref, "destination": self._dst.ref}.get(verdict.runs_on)
        stats = completed_stats(self._src, self._dst, self._uuid, None) if verdict.outcome == "success" else {}
        stayed = verdict.outcome == "failed" and verdict.runs_on == "source"
        cancelled = stayed and self._cancel_requested and not self._timed_out
        outcome = "cancelled" if cancelled else verdict.outcome if verdict.known else "unknown"
        return MigrationResult(
            outcome=outcome,
            host=host,
            error="" if outcome == "success" else ending.text,
            downtime_ms=float(stats["downtime"]) if stats.get("downtime") is not None else None,
            duration_s=round(time.monotonic() - self._t0, 3),
            vm=self.vm,
            source=self.source,
            destination=self.destination,
            post_copy=self._steering.postcopy,
            escalations=tuple(self._steering.escalations),
        )

    def _poll(self) -> tuple[dict[str, Any], int, int] | None:
        """The source's job figures and the domain's state; None when the source does not answer."""
        try:
            stats = self._dom.jobStats()
        except libvirt.libvirtError as err:
            if not conn_alive(self._dom.connect()):
                self._follow_new_connection()
                return None
            log.debug("VM %s: jobStats: %s", self._name, words(err))
            stats = {}
        try:
            state, reason = self._dom.state()[:2]
        except libvirt.libvirtError:
            state, reason = 0, 0
        return stats, state, reason

    def _follow_new_connection(self) -> None:
        """The source's main connection died: poll on the one the backend's watcher opened since,
        or, once the hosts were read again (the link is back), on one of our own."""
        conn = self._src.conn
        if conn is None or conn is self._dom.connect() or not conn_alive(conn):
            if not self._learner.regained:
                return
            if not conn_alive(self._poll_conn):
                try:
                    self._poll_conn = self._src.open_side()
                except BackendError:
                    return
            conn = self._poll_conn
            if conn is None:
                return
        try:
            self._dom = conn.lookupByUUIDString(self._uuid)
        except libvirt.libvirtError:
            pass

    def _on_timeout(self) -> None:
        if self._done.is_set():
            return
        self._timed_out = True
        try:
            self._dom.abortJob()
        except libvirt.libvirtError:
            pass

    def note(self) -> str:
        """What the user should know about the settings of this run ('' when nothing)."""
        return self._steering.note()

    # -- the public handle ----------------------------------------------------------------
    def stop_following(self) -> None:
        self._stop.set()

    @property
    def result(self) -> MigrationResult | None:
        return self._result if self._done.is_set() else None

    def updates(self) -> Iterator[MigrationProgress]:
        yield MigrationProgress(
            phase=MigrationPhase.PREPARING,
            fraction=0.0,
            cancellable=True,
            message=f"{self._src.name} -> {self._dst.name}",
        )
        said = ""  # the out-of-contact words last yielded
        polls_lost_since: float | None = None
        while not self._done.wait(POLL_S):
            if self._stop.is_set():
                return
            polled = None if self._learner.lost else self._poll()
            if polled is None:
                polls_lost_since = polls_lost_since or time.monotonic()
                lost = self._learner.lost or (
                    f"outcome unknown: lost contact with {self._src.name} at {round(100 * self._best)} %; still trying"
                    if time.monotonic() - polls_lost_since > OUT_OF_CONTACT_S
                    else ""
                )
                if lost and lost != said:
                    said = lost
                    yield MigrationProgress(
                        phase=self._reading.phase, fraction=self._best, out_of_contact=True, message=lost
                    )
                continue
            polls_lost_since, said = None, ""
            stats, state, reason = polled
            progress = self._progress(stats, state, reason, self._best)
            self._best = progress.fraction if progress.fraction is not None else self._best
            self._steering.steer(self._dom, stats, cancelling=self._cancel_requested)
            # what the tuning changed during the move (auto-converge throttling, post-copy) is said
            note = self._learner.regained or (
                self._steering.escalations[-1] if self._steering.escalations else self.note()
            )
            if not progress.message and note:
                progress = progress.model_copy(update={"message": note})
            if not self._done.is_set():
                yield progress
        result = self._result
        if result is None:  # stop_following() ended the reading of the hosts after lost contact
            return
        if result.outcome == "success":
            yield MigrationProgress(
                phase=MigrationPhase.DONE,
                fraction=1.0,
                cancellable=False,
                message=f"now on {self._dst.name}"
                + (f", downtime {result.downtime_ms:.0f} ms" if result.downtime_ms else ""),
            )
        else:
            phase = MigrationPhase.CANCELLED if result.outcome == "cancelled" else MigrationPhase.FAILED
            yield MigrationProgress(phase=phase, cancellable=False, message=result.error)

    def _progress(self, st: dict[str, Any], state: int, reason: int, best: float) -> MigrationProgress:
        """This poll's progress (``best``: the furthest fraction shown), read by progress.py."""
        p = self._reading.read(
            st,
            state,
            reason,
            best,
            iteration=self._src.migration_iteration.get(self._uuid, 0),
            postcopy=self._steering.postcopy,
            cancelling=self._cancel_requested,
        )
        # post-copy the domain's state showed is as the switch poolctl makes: no cancel, no second switch
        self._steering.postcopy = self._steering.postcopy or self._reading.postcopy
        return p

    def cancel(self) -> None:
        name, dst = self._name, self._dst.name
        if self._done.is_set():
            raise CancelRefused(f"the migration of VM '{name}' to {dst} has already ended")
        if self._steering.postcopy:
            raise CancelRefused(f"VM '{name}' already runs on {dst} (post-copy): the migration cannot be undone")
        if self._learner.lost:
            raise CancelRefused(
                f"lost contact with {self._src.name}: the migration of VM '{name}' cannot be cancelled "
                "until poolctl reaches it again",
                host=self._src.name,
            )
        self._cancel_requested = True
        deadline = time.monotonic() + 2.0
        while True:
            try:
                self._dom.abortJob()
                return
            except libvirt.libvirtError as err:
                if self._done.is_set():
                    raise CancelRefused(f"the migration of VM '{name}' to {dst} has already ended") from None
                # Right at the start the job may not be registered yet: try again briefly.
                if err.get_error_code() != libvirt.VIR_ERR_OPERATION_INVALID or time.monotonic() > deadline:
                    self._cancel_requested = False
                    raise CancelRefused(
                        f"cannot cancel the migration of VM '{name}' to {dst}: libvirt says: {words(err)}",
                        host=self._src.name,
                    ) from None
                time.sleep(0.1)
