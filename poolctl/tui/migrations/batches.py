"""Many moves in the app: evacuating a host (`e`), disabling and enabling it (`D`, with the offer to
bring back what its last evacuation moved away), and moving the marked VMs (`m` with marks).

Each asks first (a confirmation, or the batch dialog with its plan), then runs in a thread of its
own: the host disabled (an evacuation), the batch runner's moves, the audit record of the whole.
The runner's events go to the batch's panel as messages; its controllers join the app's list of
this run's moves, so quitting asks first while they run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from textual.app import App
from textual.screen import Screen

from poolctl.audit import AuditLog, EvacuationRecord
from poolctl.backends.base import Backend, BackendError
from poolctl.config import MigrationSettings
from poolctl.errors import describe
from poolctl.evacuation_lock import HostBusy, host_lock
from poolctl.migration.batch import BatchEvent, BatchRunner, MoveStarted
from poolctl.migration.batch_summary import Summary
from poolctl.migration.controller import MigrationController, MigrationPlan, MigrationRegistry
from poolctl.migration.many import Batch, Kind, batch_record, plan_evacuation, plan_onto, rule_for
from poolctl.migration.planner import Plan, evacuees
from poolctl.migration.storage_plan import plan_evacuation_to_sr
from poolctl.model import VM, Host, PowerState
from poolctl.tui.messages import BatchEventArrived, BatchNote
from poolctl.tui.screens.batch_dialog import BatchChoice, BatchDialog
from poolctl.tui.screens.confirm import ConfirmScreen
from poolctl.tui.session import PoolSession
from poolctl.tui.widgets.batch_job import BatchJob
from poolctl.tui.widgets.batch_panel import BatchPanel
from poolctl.tui.widgets.migration_dock import MigrationDock

LOCK_HOLDER = "the poolctl TUI"


class BatchCenter:
    """This run's batches. ``runs`` is the app's list of this run's moves (shared, appended to)."""

    def __init__(
        self,
        app: App[Any],
        screen: Screen[Any],
        runs: list[MigrationController],
        dock: Callable[[], MigrationDock],
        *,
        registry: MigrationRegistry,
        audit: Callable[[], AuditLog],
        settings: MigrationSettings,
    ) -> None:
        self.app = app
        self.screen = screen
        self.runs = runs
        self.dock = dock
        self.registry = registry
        self.audit = audit
        self.settings = settings
        # (pool, host ref) -> what this app does to it, while the job has not finished
        self._busy: dict[tuple[str, str], tuple[str, BatchJob]] = {}

    def busy(self, pool: str, host: str) -> str:
        """What this app's batch does to the host now ("" when none runs)."""
        entry = self._busy.get((pool, host))
        return entry[0] if entry is not None and not entry[1].finished.is_set() else ""

    def active(self) -> list[str]:
        """The titles of this app's batches still running (their waiting moves would never start)."""
        return [title for title, job in self._busy.values() if not job.finished.is_set()]

    def panels(self) -> list[BatchPanel]:
        return list(self.screen.query(BatchPanel))

    def halt_all(self, reason: str) -> list[threading.Event]:
        """No batch starts another move (their running ones go on); each one's end, to wait for:
        a batch writes its record, naming ``reason``, once its running moves have ended."""
        jobs = [job for _title, job in self._busy.values() if not job.finished.is_set()]
        for job in jobs:
            job.halt(reason)
        return [job.finished for job in jobs]

    # --- refusals in words -----------------------------------------------------------------

    def _warn(self, title: str, text: str) -> None:
        self.app.notify(text, title=title, severity="warning", timeout=8, markup=False)

    def _host_refusal(self, session: PoolSession, host: Host, *, moving: bool) -> str:
        backend = session.backend
        if backend is None or session.store is None:
            return f"pool {session.name} is not connected"
        caps = backend.capabilities
        if not caps.host_maintenance:
            return f"the {session.config.backend} backend cannot disable or evacuate a host"
        if moving and not caps.live_migration:
            return caps.reason or f"the {session.config.backend} backend cannot live-migrate in this pool"
        doing = self.busy(session.name, host.ref)
        if doing:
            return f"{host.name} is busy: {doing}; wait for it to end"
        return ""

    # --- `e`: evacuate ---------------------------------------------------------------------

    def evacuate(self, picked: tuple[PoolSession, Host] | None) -> None:
        if picked is None:
            self._warn("Evacuate", "Select a host in the pool tree first")
            return
        session, host = picked
        why = self._host_refusal(session, host, moving=True)
        if why:
            self._warn(f"Cannot evacuate {host.name}", why)
            return
        store, backend = session.store, session.backend
        assert store is not None and backend is not None
        vms, hosts = list(store.vms.values()), list(store.hosts.values())
        srs, networks = list(store.srs.values()), list(store.networks.values())
        caps, rate = backend.capabilities, self.settings.storage_rate
        count = len(evacuees(vms, host.ref))

        def planned(sr: str | None, network: str | None) -> Plan:
            # the dialog's SR (storage motion, as --sr) and migration network (as --network)
            if sr is not None:
                return plan_evacuation_to_sr(backend, vms, hosts, srs, host.ref, sr, rate, network=network)
            return plan_evacuation(backend, vms, hosts, host.ref, network=network)

        dialog = BatchDialog(
            f"Evacuate {host.name}",
            f"{host.name} ({session.name}): {count} running VM{'s' if count != 1 else ''} to move away, each "
            f"pinged while it moves. Start disables the host (maintenance mode) first.",
            lambda _dest: plan_evacuation(backend, vms, hosts, host.ref),
            start_label="Evacuate",
            empty_text=f"{host.name} runs no VMs: Evacuate only disables it (maintenance mode).",
            allow_empty=True,
            # storage motion: local disks may be copied to a shared SR (poolctl evacuate --sr)
            copy_srs=[s for s in srs if s.shared and s.content_type != "iso"] if caps.storage_motion else [],
            networks=networks if caps.migration_network else [],
            choice_planner=planned,
        )

        def chosen(choice: BatchChoice | None) -> None:
            if choice is not None:
                self._launch(session, "evacuation", host, choice, f"Evacuate {host.name}")

        self.app.push_screen(dialog, chosen)

    # --- `m` with marked VMs ---------------------------------------------------------------

    def move_marked(
        self, session: PoolSession, vms: Sequence[VM], started: Callable[[], object] = lambda: None
    ) -> None:
        """The batch dialog for ``vms`` onto one host; ``started`` runs once the moves start (the
        list drops its marks then)."""
        backend, store = session.backend, session.store
        if backend is None or store is None:
            self._warn("Move marked VMs", f"pool {session.name} is not connected")
            return
        if not backend.capabilities.live_migration:
            self._warn("Move marked VMs", backend.capabilities.reason or "this backend cannot live-migrate")
            return
        on = {v.host for v in vms}
        hosts = list(store.hosts.values())
        # the hosts none of the marked VMs runs on first: the likely destination is offered first
        dests = sorted(hosts, key=lambda h: (h.ref in on, not (h.enabled and h.live), h.name.casefold()))
        names = ", ".join(v.name for v in vms[:4]) + (f" and {len(vms) - 4} more" if len(vms) > 4 else "")
        dialog = BatchDialog(
            f"Move {len(vms)} marked VM{'s' if len(vms) != 1 else ''}",
            f"Move {names} to one host, each pinged while it moves:",
            lambda dest: plan_onto(backend, vms, hosts, dest or ""),
            start_label="Move",
            destinations=dests,
        )

        def chosen(choice: BatchChoice | None) -> None:
            if choice is not None and choice.destination is not None:
                dest = store.hosts.get(choice.destination)
                if dest is not None:
                    n = len(choice.plan.moves)
                    title = f"Move {n} VM{'s' if n != 1 else ''} to {dest.name}"
                    self._launch(session, "bulk move", dest, choice, title)
                    started()

        self.app.push_screen(dialog, chosen)

    # --- `D`: disable / enable -------------------------------------------------------------

    def toggle(self, picked: tuple[PoolSession, Host] | None) -> None:
        if picked is None:
            self._warn("Disable or enable", "Select a host in the pool tree first")
            return
        session, host = picked
        why = self._host_refusal(session, host, moving=False)
        if why:
            self._warn(f"Cannot change {host.name}", why)
            return
        store = session.store
        assert store is not None
        if host.enabled:
            running = len(evacuees(store.vms.values(), host.ref))
            stay = f"\nIts {running} running VM(s) stay (e evacuates them)." if running else ""
            message = f"Disable {host.name} (pool {session.name})?\nNo VM starts on it or moves to it.{stay}"
            verb, act = "Disable", self._disable
        else:
            n = len(host.evacuated)
            back = f"\nIts last evacuation moved {n} VM(s) away: you can bring them back next." if n else ""
            state = "Maintenance mode ends; VMs" if host.maintenance else "VMs"
            message = f"Enable {host.name} (pool {session.name})?\n{state} may start on it and move to it again.{back}"
            verb, act = "Enable", self._enable

        def done(ok: bool | None) -> None:
            if ok:
                self.app.run_worker(lambda: act(session, host), thread=True, exit_on_error=False, group="host")

        self.app.push_screen(ConfirmScreen(f"{verb} host", message, verb, "Leave it"), done)

    def _notify(self, text: str, *, title: str = "", error: bool = False) -> None:
        # worker thread
        self.app.call_from_thread(
            self.app.notify, text, title=title, severity="error" if error else "information", timeout=8, markup=False
        )

    def _disable(self, session: PoolSession, host: Host) -> None:
        assert session.backend is not None
        try:
            session.backend.disable_host(host.ref)
        except BackendError as exc:
            self._notify(describe(exc), title=f"Cannot disable {host.name}", error=True)
            return
        self._notify(f"{host.name} disabled: no VM starts on it or moves to it")

    def _enable(self, session: PoolSession, host: Host) -> None:
        assert session.backend is not None
        try:
            with host_lock(session.name, host.uuid or host.ref, host.name, LOCK_HOLDER):
                moved = session.backend.enable_host(host.ref)
        except (BackendError, HostBusy) as exc:
            self._notify(describe(exc), title=f"Cannot enable {host.name}", error=True)
            return
        self._notify(f"{host.name} enabled: VMs may start on it and move to it again")
        if moved:
            self.app.call_from_thread(self._offer_restore, session, host, moved)

    def _offer_restore(self, session: PoolSession, host: Host, moved: Sequence[str]) -> None:
        store, backend = session.store, session.backend
        if store is None or backend is None:
            return
        by_uuid = {v.uuid: v for v in store.vms.values()}
        back = [
            vm
            for u in moved
            if (vm := by_uuid.get(u)) is not None and vm.host != host.ref and vm.power_state == PowerState.RUNNING
        ]
        if not back:
            self.app.notify(
                f"none of the {len(moved)} VM(s) the last evacuation moved away still runs elsewhere",
                title=f"Nothing to restore to {host.name}",
                timeout=8,
                markup=False,
            )
            return
        # the store may not have the enable's event yet: the host as it is now, taking VMs
        now = host.model_copy(update={"enabled": True, "maintenance": False, "evacuated": ()})
        hosts = [now if h.ref == host.ref else h for h in store.hosts.values()]
        dialog = BatchDialog(
            f"Restore to {host.name}",
            f"{host.name} takes VMs again. Its last evacuation moved {len(back)} VM(s) that still run elsewhere: "
            f"move them back, each pinged? Close leaves them where they are.",
            lambda _dest: plan_onto(backend, back, hosts, host.ref),
            start_label="Restore",
            partial=True,
        )

        def chosen(choice: BatchChoice | None) -> None:
            if choice is not None:
                self._launch(session, "restore", host, choice, f"Restore to {host.name}")

        self.app.push_screen(dialog, chosen)

    # --- running a batch -------------------------------------------------------------------

    def _launch(self, session: PoolSession, kind: Kind, host: Host, choice: BatchChoice, title: str) -> None:
        backend = session.backend
        if backend is None:
            self._warn(title, f"pool {session.name} is not connected")
            return
        doing = self.busy(session.name, host.ref)
        if doing:
            self._warn(title, f"{host.name} is busy: {doing}")
            return
        job = BatchJob()
        self._busy[(session.name, host.ref)] = (title.lower(), job)
        first = f"disabling {host.name} (maintenance mode)…" if kind == "evacuation" else ""
        panel = BatchPanel(title, choice.plan, job, first_note=first)
        self.dock().add_panel(panel)
        panel.focus()

        def run() -> None:
            try:
                self._run(session, backend, kind, host, choice, job, panel)
            except Exception as exc:  # a bug: say so on the panel instead of a silent thread
                panel.post_message(BatchNote(f"the batch stopped: {describe(exc)}", problem=True))
            finally:
                job.finished.set()
                panel.post_message(BatchNote("", ended=True))

        # a plain daemon thread, as for one migration's panel: a batch can run for an hour
        threading.Thread(target=run, name=f"batch {title}", daemon=True).start()

    def _run(
        self,
        session: PoolSession,
        backend: Backend,
        kind: Kind,
        host: Host,
        choice: BatchChoice,
        job: BatchJob,
        panel: BatchPanel,
    ) -> None:
        asked = datetime.now(UTC)
        plan = choice.plan
        try:
            with host_lock(session.name, host.uuid or host.ref, host.name, LOCK_HOLDER):
                if kind == "evacuation":
                    try:
                        backend.disable_host(host.ref, maintenance=True, evacuated=[p.vm.uuid for p in plan.moves])
                    except BackendError as exc:
                        panel.post_message(
                            BatchNote(f"cannot disable {host.name}: {describe(exc)}; nothing moved", problem=True)
                        )
                        return
                    panel.post_message(BatchNote(f"{host.name} disabled (maintenance mode): no VM moves to it"))
                summary = self._moves(session, backend, plan, choice.batch, job, panel) if plan.moves else None
                if kind == "evacuation" and summary is not None and len(summary.moved) != len(plan.moves):
                    # a restore brings back only the VMs that really left
                    moved = {line.vm for line in summary.moved}
                    try:
                        backend.disable_host(
                            host.ref, maintenance=True, evacuated=[p.vm.uuid for p in plan.moves if p.vm.name in moved]
                        )
                    except BackendError as exc:
                        panel.post_message(BatchNote(f"recording the moved VMs on {host.name}: {describe(exc)}"))
                self._write(batch_record(kind, session.name, host, summary, asked=asked, batch=choice.batch), panel)
                bad = summary is not None and not summary.ok
                panel.post_message(BatchNote(closing(kind, host, summary), problem=bad))
        except HostBusy as exc:
            panel.post_message(BatchNote(str(exc), problem=True))

    def _moves(
        self, session: PoolSession, backend: Backend, plan: Plan, batch: Batch, job: BatchJob, panel: BatchPanel
    ) -> Summary:
        password = session.config.password
        secrets = [password.get_secret_value()] if password else []
        names = {p.vm.host: p.source_name for p in plan.moves if p.vm.host}
        names.update({p.destination.ref: p.destination.name for p in plan.moves if p.destination is not None})
        audit = self.audit()

        def controller(b: Backend, p: MigrationPlan) -> MigrationController:
            return MigrationController(
                b,
                p,
                registry=self.registry,
                audit=audit,
                secrets=secrets,
                host_name=lambda ref: names.get(ref, ref) if ref else "",
            )

        def on_event(e: BatchEvent) -> None:
            if isinstance(e, MoveStarted):
                # list.append is atomic: the UI thread's readers (quit, history) see it or not
                self.runs.append(e.controller)
            panel.post_message(BatchEventArrived(e))

        runner = BatchRunner(
            backend,
            plan,
            controller,
            rule_for(batch),
            pool=session.name,
            on_event=on_event,
            ping_interval=self.settings.ping_interval,
            ping_port=self.settings.ping_port,
        )
        job.attach(runner)
        return runner.run()

    def _write(self, rec: EvacuationRecord, panel: BatchPanel) -> None:
        try:
            self.audit().append(rec)
        except OSError as exc:
            panel.post_message(BatchNote(f"audit log: {exc}", problem=True))


def closing(kind: Kind, host: Host, summary: Summary | None) -> str:
    """What the batch leaves behind, in words."""
    if kind != "evacuation":
        return ""
    if summary is None:
        return f"{host.name} runs no VMs and stays disabled (maintenance mode)"
    if summary.ok:
        return f"{host.name} is empty and stays in maintenance; D enables it and offers to bring the VMs back"
    return f"{host.name} stays disabled (maintenance mode); {summary.left_behind()}"
