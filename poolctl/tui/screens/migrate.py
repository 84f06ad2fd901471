"""The migrate dialog: every other host of the pool with the backend's verdict, options, ping,
and the tuner's prediction for the highlighted host (poolctl.migration.autotune) before Enter.

The options carry the CLI's and the config's names; an empty field or an unticked box is the
tuner's to choose (``tune`` unticked: the hypervisor's own defaults).

Pre-checks run in parallel worker threads, one per host; each posts its verdict as a message
and a check that raised shows as an unusable host with the error (never a traceback).
Unusable hosts are listed with their reasons but cannot be chosen; the first usable host
(in list order) is highlighted until the user moves; Enter starts the move.

Other pools (the backend moves VMs across pools, Capabilities.cross_pool): the hosts of every
other connected pool of the same backend, linked to this one (poolctl.migration.cross_pool), come
after the pool's own, named ``POOL/HOST``; each is pre-checked as that move (options.to_pool) and
its disks go to that pool's SRs by the same defaults.

Storage motion (the pool's backend can copy disks, the VM has disks): a row per disk with the SR
it goes to on the highlighted host, by default the obvious one (poolctl.migration.storage); a
host is pre-checked with its own map, and again when the user picks another SR. What is copied
and the estimate show for the highlighted host before Enter.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Select
from textual.widgets._select import SelectOverlay
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState

from poolctl.audit import AuditLog
from poolctl.backends.base import Backend, Capabilities
from poolctl.errors import describe
from poolctl.format import size
from poolctl.migration.autotune import TunedPlan, plan_move, retune
from poolctl.migration.controller import MigrationPlan
from poolctl.migration.cross_pool import Destination, move_options, placing
from poolctl.migration.storage import CopyRate, copy_rate, map_curable, movable_disks
from poolctl.migration.tuner import TuneRequest
from poolctl.model import VM, Host, MigrationCheck, StorageRepository
from poolctl.safe_text import shown, shown_line
from poolctl.tui.screens import migrate_fields as fields
from poolctl.tui.screens.migrate_fields import DEFAULT_INTERVAL_MS
from poolctl.tui.screens.migrate_words import host_prompt, storage_words
from poolctl.tui.widgets.disk_targets import DiskMap, DiskTargets

HOSTS_MAX = 12  # the host list's most rows; fewer when the screen is short (it scrolls then)


class HostChecked(Message):
    def __init__(self, host: str, check: MigrationCheck, disk_srs: DiskMap = ()) -> None:
        super().__init__()
        self.host = host
        self.check = check
        self.disk_srs = disk_srs  # the map it was checked with: a stale answer is dropped


class Predicted(Message):
    def __init__(self, host: str, tuned: TunedPlan) -> None:
        super().__init__()
        self.host = host
        self.tuned = tuned


class MigrateDialog(ModalScreen[MigrationPlan | None]):
    DEFAULT_CSS = """
    MigrateDialog { align: center middle; }
    #migrate-box {
        width: 100; max-width: 98%; height: auto; max-height: 95%;
        border: thick $accent; border-title-style: bold; padding: 0 1; background: $surface;
    }
    #migrate-hosts { height: auto; max-height: 12; margin: 1 0; }  /* HOSTS_MAX; _fit_hosts */
    .migrate-row { height: 1; margin-bottom: 1; }
    .migrate-row Input { border: none; height: 1; width: 1fr; padding: 0 1; background: $boost; }
    .migrate-row Input:focus { background: $accent 30%; }
    #migrate-interval, #migrate-port { width: 9; }
    #migrate-options Input { width: 8; }
    #migrate-storage { margin: 1 0; width: 1fr; }
    .migrate-row Checkbox { border: none; height: 1; padding: 0 1; }
    .migrate-label { padding: 0 1; }
    #migrate-error { color: $warning; display: none; margin-bottom: 1; }
    #migrate-elsewhere { color: $text-muted; width: 1fr; text-wrap: nowrap; text-overflow: ellipsis; }
    #migrate-prediction { color: $text-muted; margin-bottom: 1; }
    #migrate-keys { color: $text-muted; }
    """
    BINDINGS = [
        # priority: Enter starts the move from any field, also while no host is highlighted yet
        Binding(
            "enter", "start", "Migrate", priority=True, tooltip="Migrate dialog: start the move", id="migrate.start"
        ),
        Binding("escape", "close", "Close", tooltip="Migrate dialog: close without migrating", id="migrate.close"),
        # priority too, so that a Tab and an Enter read in one burst go in order: else the Enter is
        # judged before the Tab has moved the focus (to a disk's SR list, where Enter opens it)
        Binding(
            "tab",
            "app.focus_next",
            "Next field",
            show=False,
            priority=True,
            tooltip="Migrate dialog: the next field",
            id="migrate.next_field",
        ),
        Binding(
            "shift+tab",
            "app.focus_previous",
            "Previous field",
            show=False,
            priority=True,
            tooltip="Migrate dialog: the previous field",
            id="migrate.previous_field",
        ),
    ]

    def __init__(
        self,
        pool: str,
        backend: Backend,
        vm: VM,
        hosts: list[Host],
        source_name: str,
        capabilities: Capabilities,
        *,
        interval_ms: int = DEFAULT_INTERVAL_MS,
        ping_port: int | None = None,
        tuning: TuneRequest | None = None,
        srs: Sequence[StorageRepository] = (),
        storage_rate: float = 100.0,
        audit: AuditLog | None = None,
        elsewhere: Sequence[Destination] = (),
        not_offered: Sequence[str] = (),
    ) -> None:
        super().__init__()
        self.pool = pool
        self.backend = backend
        self.vm = vm
        self.hosts = hosts  # every host of the pool but the VM's own, in display order
        # those, then other pools' hosts (linked already): keyed by Destination.key everywhere below
        self.destinations = [Destination(h, tuple(srs)) for h in hosts] + list(elsewhere)
        self._by_key = {d.key: d for d in self.destinations}
        self.not_offered = tuple(not_offered)  # other pools not offered, each with why
        self.source_name = source_name
        self.capabilities = capabilities
        self.interval_ms = interval_ms
        self.ping_port = ping_port
        self.defaults = tuning or TuneRequest()  # the config's [migration] tuning keys
        self.checks: dict[str, MigrationCheck] = {}
        self.predictions: dict[str, TunedPlan] = {}  # destination -> the tuner's plan (its inputs measured once)
        self._workers: dict[Worker[None], str] = {}
        self._user_moved = False
        self._auto_highlight = False
        # storage motion: a row per disk that may be copied (none: a plain pool migration)
        disks = movable_disks(vm) if capabilities.storage_motion else []
        self.targets = DiskTargets(vm, disks, srs, self.destinations, id="migrate-disks") if disks else None
        self.checked_maps: dict[str, DiskMap] = {}  # host ref -> the map its check is for
        self.pending: set[str] = set()  # hosts being checked again with a new map
        self._asked: dict[str, DiskMap] = {}  # host ref -> the map of its newest pre-check
        self.configured_rate = storage_rate
        self.audit = audit  # past moves (None: the default log): the prediction's and the copy rate's
        self._rate: CopyRate | None = None
        self._rate_lock = threading.Lock()

    def compose(self) -> ComposeResult:
        vm = self.vm
        with Vertical(id="migrate-box") as box:
            box.border_title = Text(f"Migrate {shown(vm.name)}")  # Text: a str title is markup
            yield Label(
                f"{shown(vm.name)}: {size(vm.memory)} memory, running on {shown(self.source_name)}. "
                "Choose the destination:",
                id="migrate-intro",
                markup=False,
            )
            yield OptionList(
                *[Option(host_prompt(d, None), id=d.key, disabled=True) for d in self.destinations],
                id="migrate-hosts",
            )
            if self.not_offered:
                yield Label("not offered: " + "; ".join(self.not_offered), id="migrate-elsewhere", markup=False)
            if self.targets is not None:
                yield self.targets
                yield Label("", id="migrate-storage", markup=False)
            yield from fields.rows(vm, self.interval_ms, self.ping_port, self.defaults, self.capabilities)
            yield Label("predicting…", id="migrate-prediction", markup=False)
            yield Label("", id="migrate-error", markup=False)
            keys = "Enter migrate · Tab next field · Esc close"
            if self.targets is not None:
                keys = "Enter migrate (on a disk: choose its SR) · Tab next field · Esc close"
            yield Label(keys, id="migrate-keys")

    def on_mount(self) -> None:
        hosts = self.query_one("#migrate-hosts", OptionList)
        hosts.focus()
        if not self.destinations:
            self._say("This pool has no other host to move to.")
        for dest in self.destinations:
            self._recheck(dest.key)
        self._show_disks()
        self._refit()

    def on_resize(self) -> None:
        self._refit()

    def _refit(self) -> None:
        self.call_after_refresh(self._fit_hosts)

    def _fit_hosts(self) -> None:
        """The host list gets what the other rows leave of the screen, so that with other pools'
        hosts the keys line still shows at 80x24 (the list scrolls)."""
        box = self.query_one("#migrate-box")
        hosts = self.query_one("#migrate-hosts", OptionList)
        room = math.floor(self.size.height * 0.95) - box.styles.gutter.height  # the box's max-height
        used, below = 0, 0  # the rows of the others; the margin under the last (sibling margins collapse)
        for child in box.children:
            if not child.display:
                continue
            margin = child.styles.margin
            used += max(below, margin.top) + (0 if child is hosts else child.outer_size.height)
            below = margin.bottom
        fit = max(3, min(HOSTS_MAX, room - used - below))
        if hosts.styles.max_height is None or hosts.styles.max_height.value != fit:
            hosts.styles.max_height = fit

    # --- the prediction --------------------------------------------------------------------

    @work(thread=True, exit_on_error=False, group="predict")
    def _predict(self, host: str, request: TuneRequest, interval_s: float | None) -> None:
        self.post_message(Predicted(host, self._plan_move(host, request, interval_s)))

    def _plan_move(self, host: str, request: TuneRequest, interval_s: float | None, measure: bool = True) -> TunedPlan:
        return plan_move(
            self.backend,
            self.vm,
            pool=self.pool,
            source=self.source_name,
            destination=self._by_key[host].label,
            probe_interval_s=interval_s,
            request=request,
            measure=measure,
            supported=self.capabilities.migration_options,
            audit=self.audit,
        )

    def on_predicted(self, msg: Predicted) -> None:
        self.predictions[msg.host] = msg.tuned
        self._show_prediction()

    def _show_prediction(self) -> None:
        option = self.query_one("#migrate-hosts", OptionList).highlighted_option
        tuned = self.predictions.get(option.id) if option is not None and option.id else None
        label = self.query_one("#migrate-prediction", Label)
        if tuned is None:
            label.update("predicting…" if option is not None and option.id in self.checks else "")
            return
        if option is not None and option.id:
            tuned = self._with_disks(option.id, tuned)
        settings = ", ".join(f"{c.name} {c.value}" for c in tuned.tuning.choices if c.applied)
        label.update(tuned.prediction.short() + (f"\nsettings ({tuned.tuning.mode}): {settings}" if settings else ""))
        self._refit()

    def _with_disks(self, host: str, tuned: TunedPlan) -> TunedPlan:
        """The prediction with the disk copy this host's checked map makes (none: as it is)."""
        check = self.checks.get(host)
        if check is None or not check.copy_bytes:
            return tuned
        return tuned.with_disk_copy(check.copy_bytes, self.copy_rate().mib_s, self.backend)

    def _request(self) -> TuneRequest:
        """What the fields ask for; raises ValueError naming a bad field."""
        return fields.tune_request(self, self.defaults, self.capabilities.migration_options)

    # --- pre-checks ------------------------------------------------------------------------

    def _recheck(self, host: str) -> None:
        """Pre-check ``host`` with the disk map it has now."""
        disk_srs = self._disk_srs(host)
        self._asked[host] = disk_srs
        if host in self.checks:
            self.pending.add(host)
        worker = self._check(host, disk_srs)
        self._workers[worker] = host

    @work(thread=True, exit_on_error=False, group="precheck")
    def _check(self, host: str, disk_srs: DiskMap) -> None:
        dest = self._by_key[host]
        options = move_options(disk_srs=disk_srs, to_pool=dest.pool)
        rate = self.copy_rate().mib_s if disk_srs else 0.0
        check = self.backend.check_move(self.vm.ref, dest.host.ref, options, rate)
        self.post_message(HostChecked(host, check, disk_srs))

    def copy_rate(self) -> CopyRate:
        """The disk copy's estimated rate, measured or configured (reads the audit log once)."""
        with self._rate_lock:
            if self._rate is None:
                records, _problems = (self.audit or AuditLog()).read()
                self._rate = copy_rate(self.pool, self.configured_rate, records)
            return self._rate

    def on_host_checked(self, msg: HostChecked) -> None:
        if msg.disk_srs == self._disk_srs(msg.host):
            self._set_verdict(msg.host, msg.check, msg.disk_srs)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        event.stop()
        host = self._workers.get(event.worker)
        err = event.worker.error
        if host is not None and event.state == WorkerState.ERROR and err is not None:
            self._set_verdict(
                host,
                MigrationCheck(
                    vm=self.vm.ref, host=self._by_key[host].host.ref, problems=(f"pre-check failed: {describe(err)}",)
                ),
                self._disk_srs(host),
            )

    def _set_verdict(self, host_ref: str, check: MigrationCheck, disk_srs: DiskMap) -> None:
        self.checks[host_ref] = check
        self.checked_maps[host_ref] = disk_srs
        self.pending.discard(host_ref)
        options = self.query_one("#migrate-hosts", OptionList)
        options.replace_option_prompt(host_ref, host_prompt(self._by_key[host_ref], check))
        if host_ref == self._view_host():
            self._show_storage()
            self._show_prediction()  # a new map copies other disks: the prediction follows
        self._refit()
        # a host refused only for where the disks go stays choosable: other SRs may cure it
        if check.ok or (self.targets is not None and map_curable(check)):
            options.enable_option(host_ref)
        else:
            options.disable_option(host_ref)
        if check.ok and host_ref not in self.predictions:
            try:
                self._predict(host_ref, self._request(), self._interval_s())
            except ValueError:
                pass  # a bad field: said at Enter
        if not self._user_moved:
            # the first usable host in list order among those checked so far
            first = next(
                (i for i, d in enumerate(self.destinations) if d.key in self.checks and self.checks[d.key].ok), None
            )
            if first is not None and options.highlighted != first:
                self._auto_highlight = True
                options.highlighted = first

    @on(OptionList.OptionHighlighted, "#migrate-hosts")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self._show_prediction()
        self._show_disks()
        if self._auto_highlight:
            self._auto_highlight = False
        elif self.checks:
            self._user_moved = True

    # --- where the disks go ----------------------------------------------------------------

    def _view_host(self) -> str | None:
        """The host the disk rows are for: the highlighted one, else the first in the list."""
        option = self.query_one("#migrate-hosts", OptionList).highlighted_option
        if option is not None and option.id:
            return option.id
        return self.destinations[0].key if self.destinations else None

    def _disk_srs(self, host: str) -> DiskMap:
        return self.targets.disk_srs(host) if self.targets is not None else ()

    def _show_disks(self) -> None:
        if self.targets is not None:
            self.targets.show(self._view_host())
            self._show_storage()

    def on_disk_targets_picked(self, event: DiskTargets.Picked) -> None:
        event.stop()
        # every host whose map the pick changes (those that see the SR): the list's verdicts stay true
        for d in self.destinations:
            if self._disk_srs(d.key) != self._asked.get(d.key):
                self._recheck(d.key)
        self._show_storage()

    def _show_storage(self) -> None:
        """What the highlighted host's move copies and how long it may take, or why not."""
        if self.targets is None:
            return
        self._refit()  # its words take one row or two
        host = self._view_host()
        if host is None:
            self.query_one("#migrate-storage", Label).update("")
            return
        check = self.checks.get(host)
        if host in self.pending or self.checked_maps.get(host) != self._disk_srs(host):
            check = None  # its verdict is for other SRs
        self.query_one("#migrate-storage", Label).update(storage_words(self._by_key[host].label, check, self.copy_rate))

    # --- starting --------------------------------------------------------------------------

    @on(OptionList.OptionSelected, "#migrate-hosts")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self._start()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Enter on a disk's SR list opens or picks from it: the priority Enter must let it through
        if action == "start" and isinstance(self.focused, Select | SelectOverlay):
            return False
        return True

    def action_start(self) -> None:
        self._start()

    def _start(self) -> None:
        options = self.query_one("#migrate-hosts", OptionList)
        option = options.highlighted_option
        if option is None or option.disabled or option.id not in self.checks:
            usable = [d for d in self.destinations if self.checks.get(d.key) and self.checks[d.key].ok]
            self._say(
                "Still checking the hosts…"
                if len(self.checks) < len(self.destinations) and not usable
                else "Choose a usable host (marked ✓)."
                if usable
                else "No host can take this VM now (see the reasons above)."
            )
            return
        if option.id in self.pending or self.checked_maps.get(option.id) != self._disk_srs(option.id):
            self._say("Still checking the host with the disks' new SRs…")
            return
        check = self.checks[option.id]
        if not check.ok:
            self._say("The host cannot take the disks so: choose other SRs for them (see above).")
            return
        try:
            plan = self._plan(option.id)
        except ValueError as exc:
            self._say(str(exc))
            return
        self.dismiss(plan)

    def _say(self, text: str) -> None:
        """The problem line under the fields: shown only when there is something to say (80x24)."""
        error = self.query_one("#migrate-error", Label)
        error.update(shown_line(text))
        error.display = bool(text)
        self._refit()

    def _plan(self, host_ref: str) -> MigrationPlan:
        address = fields.ping_address(self)
        interval = fields.interval_ms(self)
        port = fields.ping_port(self)
        request = self._request()
        dest = self._by_key[host_ref]
        shown = self.predictions.get(host_ref)
        if shown is None:
            # Enter before the prediction came: the tuner without a dirty-rate measurement
            shown = self._plan_move(host_ref, request, interval / 1000.0 if address else None, measure=False)
        # the fields may have changed since: the same inputs, the settings as they stand now
        tuned = retune(
            shown.inputs,
            request,
            self.backend,
            interval / 1000.0 if address else None,
            self.capabilities.migration_options,
        )
        tuned = self._with_disks(host_ref, tuned)
        check = self.checks[host_ref]
        moving = move_options(disk_srs=self.checked_maps.get(host_ref, ()), to_pool=dest.pool)
        options = tuned.tuning.options.model_copy(update=placing(moving))
        return MigrationPlan(
            pool=self.pool,
            vm=self.vm.ref,
            vm_memory=self.vm.memory,
            vm_name=self.vm.name,
            vm_uuid=self.vm.uuid,
            source=self.vm.host or "",
            source_name=self.source_name,
            destination=dest.host.ref,
            destination_name=dest.label,
            options=options,
            disk_copies=check.copies,
            disk_copy_bytes=check.copy_bytes,
            ping_address=address or None,
            ping_interval=interval / 1000.0,
            ping_port=port,
            tuning=tuple(tuned.tuning.lines()),
            predicted=tuned.prediction.as_record(),
        )

    def _interval_s(self) -> float | None:
        if not self.query_one("#migrate-ping", Input).value.strip():
            return None
        return fields.interval_ms(self) / 1000.0

    def action_close(self) -> None:
        self.dismiss(None)
