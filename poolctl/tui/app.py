"""The poolctl Textual app: wires backends (in worker threads) to the stores and screens.

Data flow: each pool connects in a worker (``connecting``); its backend's threads hand changes
to ``PoolSession.push_changes``; the first change into an empty buffer posts ``ChangesPending``;
the UI thread drains the buffer at most once per frame, applies it to the pool's
``InventoryStore`` (its only writer) and posts one ``InventoryUpdated`` to the main screen.
Power operations never touch the store: the hypervisor's event does. What waits for the first
paint is in ``first_paint``.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.logging import TextualHandler
from textual.notifications import SeverityLevel
from textual.worker import Worker, WorkerState

from poolctl.backends.base import Backend
from poolctl.config import MigrationSettings, PoolConfig
from poolctl.errors import describe
from poolctl.gcpause import freeze_long_lived
from poolctl.inventory import InventoryStore
from poolctl.loading import FirstLoad, close_quietly
from poolctl.model import VM, Change, ConnectionState, ConnectionStatus, PowerOp
from poolctl.safe_text import shown, shown_lines
from poolctl.tui import bindings
from poolctl.tui.commands import VMCommands
from poolctl.tui.connecting import Connector
from poolctl.tui.first_paint import FirstPaint
from poolctl.tui.messages import ChangesPending, ConnectionChanged, InventoryLoaded, InventoryUpdated, PowerRequested
from poolctl.tui.migrations.hangup import HangUp
from poolctl.tui.screens.confirm import QuitConfirmScreen
from poolctl.tui.screens.main import MainScreen
from poolctl.tui.session import PoolSession

if TYPE_CHECKING:
    from poolctl.tui.migrations.center import MigrationCenter

FRAME_S = 1 / 60  # how long changes may pile up before one redraw takes them all


class PoolctlApp(App[None]):
    CSS_PATH = "poolctl.tcss"
    TITLE = "poolctl"
    COMMANDS = App.COMMANDS | {VMCommands}
    BINDINGS = [
        Binding("question_mark", "help", "Keys", tooltip="Show every key binding and its id", id="app.help"),
        Binding("q", "quit", "Quit", tooltip="Quit poolctl (asks first while migrations run)", id="app.quit"),
        Binding(
            "m",
            "migrate",
            "Migrate",
            tooltip="Live-migrate the selected VM (choose the host), or every marked VM to one host",
            id="vm.migrate",
        ),
        # not in the footer (short of room at 80 columns); ? and the palette list them
        Binding(
            "e",
            "evacuate",
            "Evacuate",
            show=False,
            tooltip="Evacuate the selected host: plan, then move every running VM away, pinged",
            id="host.evacuate",
        ),
        Binding(
            "D",
            "toggle_host",
            "Disable/enable",
            show=False,
            tooltip="Disable the selected host, or enable it (and offer to bring its VMs back); asks first",
            id="host.toggle",
        ),
        Binding(
            "H", "history", "History", show=False, tooltip="Migration history (this run and the log)", id="app.history"
        ),
        Binding(
            "R",
            "retry_pool",
            "Retry",
            show=False,
            tooltip="Connect the selected pool's unreachable or refused hosts again now",
            id="pool.retry",
        ),
    ]

    def __init__(
        self,
        pools: list[PoolConfig],
        *,
        keymap: dict[str, str] | None = None,
        on_exit: Callable[[], None] | None = None,
        migration: MigrationSettings | None = None,
        first_loads: dict[str, FirstLoad] | None = None,
        after_first_paint: Callable[[], None] | None = None,
        hold_first_frame: bool = False,
    ) -> None:
        super().__init__()
        names = [p.name for p in pools]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"pool names must be unique; repeated: {', '.join(dupes)}")
        first_loads = first_loads or {}
        self.sessions: dict[str, PoolSession] = {
            p.name: PoolSession(p, first_load=first_loads.get(p.name)) for p in pools
        }
        self.user_keymap: dict[str, str] = dict(keymap or {})
        self._on_exit = on_exit
        self._first_paint = FirstPaint(
            self, after_first_paint=after_first_paint, hold_first_frame=hold_first_frame, warm=lambda: self.migrations
        )
        self._connector = Connector(self.post_message)
        self._drain_scheduled: set[str] = set()
        self.main_screen = MainScreen(self.sessions)
        self._log_handler: logging.Handler | None = None
        self._migration_settings = migration or MigrationSettings()
        self._migrations: MigrationCenter | None = None
        self.hangup = HangUp(self, lambda: self.migrations)

    @property
    def migrations(self) -> MigrationCenter:
        """Made on first use, its modules imported then (~40 ms): after the first paint
        (``first_paint.WARM_S``), or at the first key that needs it."""
        if self._migrations is None:
            from poolctl.tui.migrations.center import MigrationCenter

            self._migrations = MigrationCenter(
                self, self.main_screen, settings=self._migration_settings, sessions=self.sessions
            )
        return self._migrations

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Every toast (a widget's ``notify`` ends here) may quote a hypervisor: made safe first."""
        super().notify(shown_lines(message), title=shown(title), severity=severity, timeout=timeout, markup=markup)

    # --- bindings ------------------------------------------------------------------------

    @classmethod
    def all_bindings(cls) -> Iterator[Binding]:
        """Every poolctl binding that has an id (the ones a keymap can remap)."""
        return bindings.with_ids(cls)

    @classmethod
    def binding_ids(cls) -> list[str]:
        return [b.id for b in cls.all_bindings() if b.id]

    def get_default_screen(self) -> MainScreen:
        return self.main_screen

    def on_mount(self) -> None:
        self._first_paint.hold()
        root = logging.getLogger()
        if not root.handlers:
            # Backends log their retries; without a handler Python's last resort writes
            # them to stderr, i.e. across the screen. Textual's log is where they belong.
            root.addHandler(TextualHandler())
            self._log_handler = root.handlers[-1]
        if self.user_keymap:
            unknown = sorted(set(self.user_keymap) - set(self.binding_ids()))
            if unknown:
                self.notify(
                    f"unknown binding id(s) in [keys]: {', '.join(unknown)}; press ? for the list",
                    title="Key map",
                    severity="warning",
                    markup=False,
                )
            self.set_keymap(self.user_keymap)
        for session in self.sessions.values():
            self._connect(session)
        self._first_paint.start_deadline()
        self.set_interval(1.0, self._tick_countdowns)
        self.hangup.install()

    async def action_quit(self) -> None:
        """`q`, ctrl+q and the palette's Quit: ask first while migrations are running."""
        center = self._migrations  # none made: none running
        question = center.quit_question() if center is not None else None
        if question is None:
            self.exit()
            return
        if isinstance(self.screen, QuitConfirmScreen):
            return

        def done(ok: bool | None) -> None:
            if ok:
                self.exit()

        self.push_screen(QuitConfirmScreen(question), done)

    def action_migrate(self) -> None:
        if self.screen is not self.main_screen:
            return
        marked = self.main_screen.marked_vms()
        if marked is not None:
            session, vms = marked
            self.migrations.batches.move_marked(session, vms, self.main_screen.vm_list.clear_marks)
        else:
            self.migrations.request(self.main_screen.selected_vm())

    def action_evacuate(self) -> None:
        if self.screen is self.main_screen:
            self.migrations.batches.evacuate(self.main_screen.selected_host())

    def action_toggle_host(self) -> None:
        if self.screen is self.main_screen:
            self.migrations.batches.toggle(self.main_screen.selected_host())

    def action_history(self) -> None:
        from poolctl.tui.screens.history import HistoryScreen

        if not isinstance(self.screen, HistoryScreen):
            self.push_screen(HistoryScreen(self.migrations))

    def action_retry_pool(self) -> None:
        """A refused login or an untrusted host key is only tried again from here; a pool
        waiting out its back-off tries at once."""
        scope = self.main_screen.scope
        session = self.sessions.get(scope.pool) if scope is not None else None
        if session is None:
            return
        self.notify(f"connecting to {session.name} again", title=f"Pool {session.name}", markup=False)
        if session.backend is not None:
            self.run_worker(session.backend.retry_now, thread=True, group="retry", exit_on_error=False)
        elif session.connecting:
            session.retry_kick.set()  # the worker's back-off ends now
        else:
            self._connector.post_state(session, ConnectionStatus.CONNECTING)
            self._connect(session)

    def action_help(self) -> None:
        from poolctl.tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.all_bindings(), self.user_keymap))

    # --- connecting ----------------------------------------------------------------------

    @work(thread=True, exclusive=False, group="connect", exit_on_error=False)
    def _connect(self, session: PoolSession) -> None:
        self._connector.run(session)

    def on_inventory_loaded(self, msg: InventoryLoaded) -> None:
        painted = self._connector.take_painted(msg.pool)
        session = self.sessions[msg.pool]
        session.backend = msg.backend
        session.store = InventoryStore(msg.inventory)
        freeze_long_lived()
        session.set_state(ConnectionState(pool=session.name, status=ConnectionStatus.CONNECTED))
        self.main_screen.post_message(ConnectionChanged(session.state))
        # Changes that raced the snapshot sit in the buffer: apply them on top.
        self._drain(session.name, loaded=True)
        self.main_screen.call_later(self._first_paint.shown, self.main_screen, painted)  # once it took the news

    def on_changes_pending(self, msg: ChangesPending) -> None:
        if msg.pool not in self._drain_scheduled:
            self._drain_scheduled.add(msg.pool)
            self.set_timer(FRAME_S, lambda: self._drain(msg.pool))

    def _drain(self, pool: str, *, loaded: bool = False) -> None:
        self._drain_scheduled.discard(pool)
        session = self.sessions[pool]
        if session.store is None:
            return  # not loaded yet; the snapshot's arrival drains
        applied: list[Change] = []
        staged = session.store.devices_pending
        for change in session.take_changes():
            try:
                if session.store.apply(change) is not None:
                    applied.append(change)
            except ValueError as err:
                self.log.warning(f"pool {pool}: ignored malformed change: {err}")
        if staged and not session.store.devices_pending:
            freeze_long_lived()  # the rest of a staged load: as long-lived as the first part
        if applied or loaded:
            self.main_screen.post_message(InventoryUpdated(pool, applied, loaded=loaded))

    def on_connection_changed(self, msg: ConnectionChanged) -> None:
        session = self.sessions.get(msg.state.pool)
        if session is None:
            return
        before = session.state.status
        session.set_state(msg.state)
        if msg.state.status in (ConnectionStatus.FAILED, ConnectionStatus.LOST):
            self._first_paint.release()  # the news is the failure: shown now
        if msg.state.status == ConnectionStatus.FAILED:
            self.notify(
                msg.state.message or "no reason given",
                title=f"Pool {session.name}: connection failed",
                severity="error",
                timeout=10,
                markup=False,
            )
        elif msg.state.status == ConnectionStatus.LOST and before in (
            ConnectionStatus.CONNECTED,
            ConnectionStatus.STALE,
        ):
            self.notify(
                msg.state.message or "connection lost",
                title=f"Pool {session.name}: connection lost, retrying",
                severity="warning",
                markup=False,
            )
        self.main_screen.post_message(ConnectionChanged(msg.state))

    def _tick_countdowns(self) -> None:
        for session in self.sessions.values():
            if session.retry_at is not None:
                # the tree, the VM pane and the details all count down together
                self.main_screen.post_message(ConnectionChanged(session.state))

    # --- operations ----------------------------------------------------------------------

    def on_power_requested(self, msg: PowerRequested) -> None:
        """Run the operation in a worker; the row changes when the hypervisor says so."""
        session, vm, op = msg.session, msg.vm, msg.op
        if session.backend is None:
            self.notify(f"pool {session.name} is not connected", severity="error", markup=False)
            return
        self.notify(f"{op.verb}: {vm.name}…", timeout=3, markup=False)
        self._power(session, session.backend, vm, op)

    @work(thread=True, exclusive=False, group="power", exit_on_error=False)
    def _power(self, session: PoolSession, backend: Backend, vm: VM, op: PowerOp) -> None:
        try:
            backend.power(vm.ref, op)
        except Exception as err:
            self.call_from_thread(
                self.notify,
                describe(err),
                title=f"{op.verb} {vm.name} failed",
                severity="error",
                timeout=10,
                markup=False,
            )

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # Workers catch their own errors; this is the net for anything that slipped through.
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.notify(
                describe(event.worker.error),
                title=f"{event.worker.name or 'background task'} failed",
                severity="error",
                markup=False,
            )

    # --- shutting down -------------------------------------------------------------------

    def on_unmount(self) -> None:
        self._first_paint.end()
        self.hangup.uninstall()
        if self._migrations is not None:  # first: the moves' records, while their backends are open
            self._migrations.abandon_all()
        closers = []
        for session in self.sessions.values():
            session.stopping.set()
            if session.backend is not None:
                t = threading.Thread(target=close_quietly, args=(session.backend,), daemon=True)
                t.start()
                closers.append(t)
        for t in closers:
            t.join(timeout=3.0)
        gc.unfreeze()  # the stores go with the app: let the collector reclaim them again
        if self._log_handler is not None:
            logging.getLogger().removeHandler(self._log_handler)
        if self._on_exit is not None:
            self._on_exit()


def create_app(
    pools: list[PoolConfig],
    *,
    keymap: dict[str, str] | None = None,
    on_exit: Callable[[], None] | None = None,
    migration: MigrationSettings | None = None,
    first_loads: dict[str, FirstLoad] | None = None,
    after_first_paint: Callable[[], None] | None = None,
    hold_first_frame: bool = False,
) -> PoolctlApp:
    """The TUI for ``pools``; ``keymap`` maps binding ids (see ``?``) to keys, e.g.
    ``{"vm.force_off": "ctrl+k"}``; ``on_exit`` runs after the app has closed its backends;
    ``migration`` (the config's ``[migration]``) sets the migrate dialog's ping defaults;
    ``first_loads`` are pools already loading (``poolctl.loading.start``), taken over by name;
    ``after_first_paint`` runs once the first pool is on screen (or none came within
    ``first_paint.FIRST_PAINT_WAIT_S``, or the app ends first); ``hold_first_frame``: no frame is
    drawn until the first pool is in, a connection fails, or ``first_paint.HOLD_FIRST_FRAME_S`` have
    passed."""
    return PoolctlApp(
        pools,
        keymap=keymap,
        on_exit=on_exit,
        migration=migration,
        first_loads=first_loads,
        after_first_paint=after_first_paint,
        hold_first_frame=hold_first_frame,
    )
