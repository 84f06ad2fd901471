"""This run's migrations in the app: `m` → checks → dialog → a panel per move; many moves at
once (evacuate, bulk move, restore) in ``batches``.

The app owns one ``MigrationCenter``; its `m` calls into it, and the history screen reads
this run's moves from it. Panels live in a ``MigrationDock`` mounted under the main
screen's panes on the first move.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from textual.app import App
from textual.screen import Screen

from poolctl.audit import AuditLog
from poolctl.backends.base import Unsupported
from poolctl.config import MigrationSettings
from poolctl.migration.controller import REGISTRY, MigrationBusy, MigrationController, MigrationPlan, MigrationRegistry
from poolctl.migration.cross_pool import Destination, link
from poolctl.migration.tuner import request_from
from poolctl.model import VM, PowerState
from poolctl.safe_text import shown_line
from poolctl.tui.migrations.batches import BatchCenter
from poolctl.tui.screens.migrate import MigrateDialog
from poolctl.tui.screens.migrate_fields import INTERVAL_MIN_MS
from poolctl.tui.session import PoolSession
from poolctl.tui.widgets.migration_dock import MigrationDock
from poolctl.tui.widgets.migration_panel import QUIT_REASON, MigrationPanel


class MigrationCenter:
    """This run's migrations: starting them and their panels (on ``screen``, the main one)."""

    def __init__(
        self,
        app: App[Any],
        screen: Screen[Any],
        *,
        registry: MigrationRegistry = REGISTRY,
        audit: AuditLog | None = None,
        settings: MigrationSettings | None = None,
        sessions: Mapping[str, PoolSession] | None = None,
    ) -> None:
        self.app = app
        self.sessions = sessions if sessions is not None else {}  # every configured pool, by name
        self.screen = screen
        self.registry = registry
        self.audit = audit
        self.settings = settings or MigrationSettings()
        self.runs: list[MigrationController] = []  # this run's, oldest first (batches' moves too)
        self.batches = BatchCenter(
            app,
            screen,
            self.runs,
            self.dock,
            registry=registry,
            audit=lambda: self.audit_log,
            settings=self.settings,
        )

    @property
    def audit_log(self) -> AuditLog:
        # resolved late: tests point POOLCTL_STATE_DIR somewhere after the app is built
        return self.audit if self.audit is not None else AuditLog()

    # --- `m` -------------------------------------------------------------------------------

    def request(self, picked: tuple[PoolSession, VM] | None) -> None:
        """Open the dialog for the selected VM, or say in words why not."""
        app = self.app
        if picked is None:
            app.notify("No VM selected", severity="warning")
            return
        session, vm = picked
        why = self._refusal(session, vm)
        if why:
            app.notify(why, title=f"Cannot migrate {vm.name}", severity="warning", timeout=8, markup=False)
            return
        store, backend = session.store, session.backend
        assert store is not None and backend is not None
        hosts = sorted((h for h in store.hosts.values() if h.ref != vm.host), key=lambda h: (h.name.casefold(), h.ref))
        elsewhere, not_offered = self._other_pools(session)
        dialog = MigrateDialog(
            session.name,
            backend,
            vm,
            hosts,
            store.name_of(vm.host) if vm.host else "?",
            backend.capabilities,
            interval_ms=max(INTERVAL_MIN_MS, round(self.settings.ping_interval * 1000)),
            ping_port=self.settings.ping_port,
            tuning=request_from(self.settings),
            srs=list(store.srs.values()),
            networks=list(store.networks.values()),
            storage_rate=self.settings.storage_rate,
            audit=self.audit_log,
            elsewhere=elsewhere,
            not_offered=not_offered,
        )

        def chosen(plan: MigrationPlan | None) -> None:
            if plan is not None:
                self.start(session, plan)

        app.push_screen(dialog, chosen)

    def _other_pools(self, session: PoolSession) -> tuple[list[Destination], list[str]]:
        """The hosts of the other connected pools of the same backend, linked as destinations of
        ``session``'s moves (none when its backend has no cross-pool moves); and the pools not
        offered, each with why."""
        backend = session.backend
        if backend is None or not backend.capabilities.cross_pool:
            return [], []
        offered: list[Destination] = []
        not_offered: list[str] = []
        for other in self.sessions.values():
            if other is session or other.config.backend != session.config.backend:
                continue
            if other.backend is None or other.store is None or not other.connected:
                # a backend's words name the pool already: said once
                why = other.status_text().replace(f"pool {other.name!r}: ", "", 1)
                not_offered.append(f"{other.name} ({shown_line(why)})")
                continue
            try:
                link(backend, other.backend)
            except Unsupported as exc:
                not_offered.append(f"{other.name} ({shown_line(exc)})")
                continue
            srs = tuple(other.store.srs.values())
            hosts = sorted(other.store.hosts.values(), key=lambda h: (h.name.casefold(), h.ref))
            networks = tuple(other.store.networks.values())
            offered += [Destination(h, srs, other.name, networks) for h in hosts]
        return offered, not_offered

    def _refusal(self, session: PoolSession, vm: VM) -> str:
        if session.backend is None or session.store is None:
            return f"pool {session.name} is not connected"
        caps = session.backend.capabilities
        if not caps.live_migration:
            return caps.reason or f"the {session.config.backend} backend cannot live-migrate in this pool"
        if vm.power_state != PowerState.RUNNING:
            return f"{vm.name} is {vm.power_state.value}; only a running VM can be live-migrated"
        if caps.storage_motion and not vm.devices_known:
            # the dialog offers where each disk goes: it needs the disks (a staged load reads them last)
            return f"{vm.name}'s disks are still being read; try again in a moment"
        other = self.registry.get(session.name, vm.ref)
        if other is not None:
            return f"{vm.name} is already migrating ({other.plan.route}); wait for it to end or cancel it first"
        return ""

    def start(self, session: PoolSession, plan: MigrationPlan) -> MigrationPanel | None:
        backend = session.backend
        if backend is None:
            self.app.notify(f"pool {session.name} is not connected", severity="error", markup=False)
            return None
        # a cross-pool move's words may come from the destination pool too
        there = self.sessions.get(plan.options.to_pool) if plan.options.to_pool else None
        passwords = [c.password for c in (session.config, there.config if there else None) if c and c.password]
        controller = MigrationController(
            backend,
            plan,
            registry=self.registry,
            audit=self.audit_log,
            secrets=[p.get_secret_value() for p in passwords],
        )
        try:
            controller.claim()
        except MigrationBusy as exc:
            self.app.notify(
                str(exc), title=f"Cannot migrate {plan.vm_name}", severity="warning", timeout=8, markup=False
            )
            return None
        self.runs.append(controller)
        panel = MigrationPanel(controller, backend_name=session.config.backend)
        self.dock().add_panel(panel)
        panel.focus()
        return panel

    def dock(self) -> MigrationDock:
        screen = self.screen
        found = screen.query(MigrationDock)
        if found:
            return found.first()
        dock = MigrationDock(id="migrations")
        footers = [w for w in screen.children if type(w).__name__ == "Footer"]
        screen.mount(dock, before=footers[0] if footers else None)
        return dock

    def moving(self) -> list[MigrationController]:
        """This run's migrations the hypervisor has not finished yet."""
        return [c for c in self.runs if not c.ended and not c.finished.is_set()]

    def quit_question(self) -> str | None:
        """What to ask before poolctl quits while moves or batches run; None when none does."""
        moving = self.moving()
        batches = self.batches.active()
        if not moving and not batches:
            return None
        n = len(moving)
        names = "\n".join(f"  {c.plan.vm_name}: {c.plan.route} ({c.progress.phase.value})" for c in moving[:3])
        more = f"\n  … and {n - 3} more" if n > 3 else ""
        message = (
            (
                f"{n} migration{'s are' if n > 1 else ' is'} running: quit anyway?\n{names}{more}\n"
                f"{'They continue' if n > 1 else 'It continues'} on the hypervisor; poolctl stops watching "
                f"{'them' if n > 1 else 'it'}."
            )
            if moving
            else "Quit anyway?"
        )
        if batches:
            message += f"\n{', '.join(batches)}: the moves still waiting will not start."
        return message

    def abandon_all(self) -> None:
        """poolctl is quitting: log every move still followed as 'unfinished' (the hypervisor
        carries on), before the backends they use are closed."""
        for c in self.runs:
            if not c.finished.is_set():
                c.abandon(QUIT_REASON)

    def panels(self) -> list[MigrationPanel]:
        return list(self.screen.query(MigrationPanel))
