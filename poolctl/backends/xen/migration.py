"""Live migration on XAPI: pre-checks in words, and a handle that follows the task."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

import XenAPI

from poolctl.backends.base import BackendError, CancelRefused, MigrationHandle, SwitchoverModel
from poolctl.backends.xen.connection import Connector, SessionPool, logout_quietly
from poolctl.backends.xen.errors import REFUSALS, failure_parts, is_connection_error, quote, size_words
from poolctl.backends.xen.maintenance import in_maintenance
from poolctl.backends.xen.tasks import destroy_quietly, migration_progress
from poolctl.backends.xen.translate import NULL, Raw, Record, is_ref, power_state, to_int
from poolctl.backends.xen.words import Namer, disabled_words, refusal
from poolctl.model import MigrationPhase, MigrationProgress, MigrationResult, PowerState

log = logging.getLogger("poolctl.backends.xen")

POLL_S = 0.5
OUT_OF_CONTACT_S = 5.0  # lost contact this long: the move's outcome is said to be unknown (still trying)


def task_gone(exc: BaseException) -> bool:
    """XAPI answers, but no longer has the task (it restarted, or someone destroyed it)."""
    details = [str(d) for d in getattr(exc, "details", None) or []] if isinstance(exc, XenAPI.Failure) else []
    return details[:1] == ["HANDLE_INVALID"] and details[1:2] == ["task"]


def busy_words(vm: Record, vm_name: str) -> str:
    """Why the VM cannot start a move now, when XAPI is running an operation on it (another
    client's migration, a shutdown…): its ``current_operations``; empty when there is none."""
    current = vm.get("current_operations")
    ops = sorted({str(op) for op in current.values()}) if isinstance(current, dict) else []
    if not ops:
        return ""
    return (
        f"{vm_name} is busy: XAPI is running {', '.join(ops)} on it (another client, or another poolctl); "
        "wait for that to end"
    )


LOST_CONTACT_GIVE_UP_S = 60.0
# For predictions only: VM.pool_migrate takes no downtime, bandwidth, compression or post-copy
# settings (its options map carries "live"), and XAPI reports no dirty rate; the predictor has
# the VM's memory and the past moves between the two hosts (audit log). Not measured here (the
# simulator's moves are not Xen's): xenguest's usual figures, stated as assumptions.
SWITCHOVER = SwitchoverModel(setup_s=3.0, device_state_ms=30.0, resume_ms=50.0, postcopy_switch_ms=None)


def own_problems(
    vm: Record, vm_name: str, host_ref: str, host: Record, metrics: Record, topo: Raw, name_of: Namer
) -> list[tuple[str, str]]:
    """(code, words) for what we can tell from records; XAPI's own check follows."""
    host_name = host.get("name_label") or host_ref
    out: list[tuple[str, str]] = []
    state = power_state(vm.get("power_state"))
    if state != PowerState.RUNNING:
        return [("VM_BAD_POWER_STATE", f"{vm_name} is {state.value}; only a running VM can be live-migrated")]
    if vm.get("resident_on") == host_ref:
        return [("VM_ALREADY_ON_HOST", f"{vm_name} already runs on {host_name}")]
    busy = busy_words(vm, vm_name)
    if busy:
        # XAPI would refuse the start (OTHER_OPERATION_IN_PROGRESS); said here, nothing is tried
        return [("OTHER_OPERATION_IN_PROGRESS", busy)]
    if not host.get("enabled", True):
        out.append(("HOST_DISABLED", disabled_words(host_name, in_maintenance(host.get("other_config")))))
    if metrics and not metrics.get("live", True):
        out.append(("HOST_OFFLINE", f"{host_name} is not live (XAPI cannot reach it)"))
    needed = to_int(vm.get("memory_dynamic_max")) or to_int(vm.get("memory_static_max"))
    free = to_int(metrics.get("memory_free")) if metrics else 0
    if metrics and needed and free < needed:
        out.append(
            (
                "HOST_NOT_ENOUGH_FREE_MEMORY",
                f"not enough free memory on {host_name}: needs {size_words(needed)}, host has {size_words(free)}",
            )
        )
    seen_sr: set[str] = set()
    for vbd_ref in vm.get("VBDs") or ():
        vbd = topo.get("vbd", {}).get(vbd_ref) or {}
        if str(vbd.get("type", "")).lower() != "disk" or vbd.get("empty"):
            continue
        vdi = topo.get("vdi", {}).get(vbd.get("VDI", NULL)) or {}
        sr = vdi.get("SR")
        if not is_ref(sr) or sr in seen_sr:
            continue
        seen_sr.add(sr)
        attached = {
            p.get("host") for p in topo.get("pbd", {}).values() if p.get("SR") == sr and p.get("currently_attached")
        }
        if host_ref not in attached:
            srrec = topo.get("sr", {}).get(sr) or {}
            kind = "shared SR" if srrec.get("shared") else "local SR"
            out.append(("VM_REQUIRES_SR", f"disk on {kind} '{name_of(sr)}' which {host_name} cannot see"))
    seen_net: set[str] = set()
    for vif_ref in vm.get("VIFs") or ():
        net = (topo.get("vif", {}).get(vif_ref) or {}).get("network")
        if not is_ref(net) or net in seen_net:
            continue
        seen_net.add(net)
        on = {p.get("host") for p in topo.get("pif", {}).values() if p.get("network") == net}
        if host_ref not in on:
            out.append(("VM_REQUIRES_NET", f"network '{name_of(net)}' is missing on {host_name}"))
    return out


def merge_xapi_verdict(
    problems: list[tuple[str, str]], code: str, params: tuple[str, ...], vm_name: str, host_name: str, name_of: Namer
) -> list[tuple[str, str]]:
    """Add XAPI's (first) objection unless we already said the same in better words."""
    if code == "HOST_NOT_ENOUGH_FREE_MEMORY":
        # XAPI's numbers (overheads included) beat our estimate.
        problems = [p for p in problems if p[0] != code]
        needed, avail = (list(params) + ["", ""])[:2]
        return problems + [
            (code, f"not enough free memory on {host_name}: needs {size_words(needed)}, host has {size_words(avail)}")
        ]
    # the same objection under XAPI's name (a cross-pool import says VM_REQUIRES_SR for an SR
    # the destination cannot see, which the disk map's check has said as SR_NOT_ATTACHED)
    aliases = {
        "VM_REQUIRES_NETWORK": "VM_REQUIRES_NET",
        "HOST_NOT_LIVE": "HOST_OFFLINE",
        "VM_REQUIRES_SR": "SR_NOT_ATTACHED",
    }
    codes = {c for c, _ in problems}
    if code in codes or aliases.get(code) in codes:
        return problems
    return problems + [(code, refusal(code, params, vm_name, "migrate", name_of))]


class XenMigrationHandle(MigrationHandle):
    """Follows one ``Async.VM.pool_migrate`` task on a session of its own; a cancel goes
    through ``pool`` (the backend's sessions), errors are worded by ``connector``."""

    def __init__(
        self,
        connector: Connector,
        pool: SessionPool,
        session: XenAPI.Session,
        task: str,
        vm: str,
        vm_name: str,
        source: str,
        destination: str,
        started: float,
    ):
        super().__init__(vm, source, destination)
        self._connector = connector
        self._pool = pool
        self._session = session
        self._task = task
        self.vm_name = vm_name
        self._started = started
        self._result: MigrationResult | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()  # stop_following()
        self._error: tuple[str, tuple[str, ...]] = ("", ())  # the failed task's XAPI code and parameters
        self._unknown = ""  # set when contact was lost for longer than outcome_wait_s
        self.when_done: Callable[[], None] | None = None  # run once the move is over (or unfollowed)
        self.leaves_pool = False  # a cross-pool move: once done, the VM is another pool's (gone from this one)
        self.copies_disks = False  # a storage motion (VM.migrate_send): its copy phase is disks, then memory
        self.name_of: Namer = str  # refs in XAPI's errors -> names, for the words of a refusal

    @property
    def result(self) -> MigrationResult | None:
        return self._result

    def updates(self) -> Iterator[MigrationProgress]:
        last: MigrationProgress | None = None
        final: MigrationProgress | None = None
        lost_since: float | None = None
        delay = POLL_S
        try:
            if not self._task:  # it ended before poolctl saw its task, on the destination (start.py)
                final = MigrationProgress(phase=MigrationPhase.DONE, fraction=1.0)
                yield final
                return
            while True:
                try:
                    rec = self._session.xenapi.task.get_record(self._task)
                    lost_since, delay = None, POLL_S
                except Exception as exc:
                    err = self._connector.errors.map(
                        exc, f"following the migration of {self.vm_name}", where=self._connector.where
                    )
                    now = time.monotonic()
                    gone = task_gone(exc)
                    if gone or not is_connection_error(exc):
                        try:  # the task is gone (XAPI restarted?): where the VM is tells the outcome
                            final = self._outcome_from_vm(last) if gone else None
                        except Exception as again:
                            if not is_connection_error(again):
                                raise
                        else:
                            final = final or MigrationProgress(phase=MigrationPhase.FAILED, message=err.message)
                            yield final
                            return
                    lost_since = lost_since or now
                    at = f"{round(100 * last.fraction)} %" if last is not None and last.fraction else "the start"
                    if now - lost_since > self.outcome_wait_s:
                        self._unknown = (
                            f"lost contact with the pool at {at} for {now - lost_since:.0f} s: how the migration "
                            f"of {self.vm_name} ended is not known (see `poolctl ls`)"
                        )
                        final = MigrationProgress(phase=MigrationPhase.FAILED, message=self._unknown)
                        yield final
                        return
                    if now - lost_since > OUT_OF_CONTACT_S and not (last is not None and last.out_of_contact):
                        base = last or MigrationProgress(phase=MigrationPhase.PREPARING)
                        last = base.model_copy(
                            update={
                                "out_of_contact": True,
                                "cancellable": False,
                                "message": f"outcome unknown: lost contact with the pool at {at}; still trying",
                            }
                        )
                        yield last
                    log.warning("%s; retrying in %s s", err.message, f"{delay:g}")
                    if self._stop.wait(delay):
                        return
                    delay = min(delay * 2, 8.0)
                    continue
                progress = migration_progress(rec, self._connector.errors.secrets())
                if self.copies_disks and progress.phase == MigrationPhase.COPYING:
                    progress = progress.model_copy(update={"phase": MigrationPhase.COPYING_STORAGE})
                if progress.phase == MigrationPhase.FAILED:
                    info = rec.get("error_info")
                    if isinstance(info, list) and info:
                        self._error = failure_parts(XenAPI.Failure(info), self._connector.errors.secrets())
                if progress != last or progress.phase.terminal:
                    last = progress
                    yield progress
                if progress.phase.terminal:
                    final = progress
                    return
                if self._stop.wait(POLL_S):
                    return
        finally:
            self._finish(final)

    def _outcome_from_vm(self, last: MigrationProgress | None) -> MigrationProgress:
        """The end of a move whose task XAPI no longer has, read from where the VM is."""
        try:
            rec = self._session.xenapi.VM.get_record(self.vm)
        except XenAPI.Failure as exc:
            gone = [str(d) for d in exc.details[:2]] == ["HANDLE_INVALID", "VM"]
            if gone and self.leaves_pool:  # it left for the other pool: only a finished move does that
                return MigrationProgress(phase=MigrationPhase.DONE, fraction=1.0)
            raise
        resident = str(rec.get("resident_on") or "")
        if resident == self.destination:
            return MigrationProgress(phase=MigrationPhase.DONE, fraction=1.0)
        where = "still runs on its source" if resident == self.source else f"is {rec.get('power_state', '?')}"
        return MigrationProgress(
            phase=MigrationPhase.FAILED,
            fraction=last.fraction if last is not None else None,
            message=f"the pool no longer has the migration's task (XAPI restarted?); {self.vm_name} {where}",
        )

    def _finish(self, final: MigrationProgress | None) -> None:
        xapi = self._session.xenapi
        if final is not None and self._unknown:
            # nothing was read: no host is claimed, and the task is left to XAPI
            self._result = MigrationResult(
                vm=self.vm,
                source=self.source,
                destination=self.destination,
                outcome="unknown",
                host=None,
                error=self._unknown,
                duration_s=round(time.monotonic() - self._started, 3),
            )
            log.warning("pool %s: %s", self._connector.config.name, self._unknown)
        elif final is not None:
            outcome = {MigrationPhase.DONE: "success", MigrationPhase.CANCELLED: "cancelled"}.get(final.phase, "failed")
            try:
                resident = xapi.VM.get_resident_on(self.vm)
                host = resident if is_ref(resident) else None
            except Exception:
                # a VM that left for another pool is no longer this pool's: the task said where it went
                host = self.destination if self.leaves_pool and outcome == "success" else None
            # XAPI checks these before it moves anything; the VM is where it was
            code, params = self._error
            refused = outcome == "failed" and code in REFUSALS and host == self.source
            self._result = MigrationResult(
                vm=self.vm,
                source=self.source,
                destination=self.destination,
                outcome=outcome,
                host=host,
                error=f"{refusal(code, params, self.vm_name, 'migrate', self.name_of)} ({final.message})"
                if refused
                else ("" if outcome == "success" else final.message),
                duration_s=round(time.monotonic() - self._started, 3),
                refused=refused,
            )
            log.info("migration of %s to %s: %s", self.vm_name, self.destination, outcome)
            if self._task:
                destroy_quietly(xapi, self._task)
        # not followed to its end (stop_following): the task stays, XAPI runs the move to its end
        # and drops the task with the session
        logout_quietly(self._session)
        if final is not None and self.when_done is not None:
            self.when_done()

    def stop_following(self) -> None:
        self._stop.set()

    def cancel(self) -> None:
        # updates() owns self._session; cancelling goes through a pooled one.
        connector = self._connector
        try:
            with self._pool.session() as s:
                # XAPI accepts task.cancel past the point of no return and then ignores it;
                # the task's allowed_operations tell whether a cancel would still be honoured.
                rec = s.xenapi.task.get_record(self._task)
                status = str(rec.get("status", "")).lower()
                if status not in ("pending", "cancelling"):
                    raise CancelRefused(
                        f"the migration of {self.vm_name} has already ended ({status})",
                        code="TASK_FINISHED",
                        params=(status,),
                        host=connector.where,
                    )
                if "cancel" not in (rec.get("allowed_operations") or ()):
                    raise CancelRefused(
                        f"the migration of {self.vm_name} is past the point where it can be cancelled "
                        f"(XAPI no longer lists 'cancel' in the task's allowed operations)",
                        code="OPERATION_NOT_ALLOWED",
                        params=("cancel",),
                        host=connector.where,
                    )
                s.xenapi.task.cancel(self._task)
        except XenAPI.Failure as exc:
            code, params = connector.errors.parts(exc)
            raise CancelRefused(
                f"the migration of {self.vm_name} can no longer be cancelled: XAPI said {quote(code, params)}",
                code=code,
                params=params,
                host=connector.where,
            ) from None
        except BackendError:
            raise
        except Exception as exc:
            raise connector.errors.map(
                exc, f"cancelling the migration of {self.vm_name}", where=connector.where
            ) from None
