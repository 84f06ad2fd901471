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

The migration network (Capabilities.migration_network): the networks of the highlighted host's
pool, the management network by default (widgets/network_choice); a pick re-checks that pool's
hosts over it, so a host that cannot receive on it says why in its line before Enter.
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
from textual.widgets import Label, OptionList, Select
from textual.widgets._select import SelectOverlay
from textual.worker import Worker, WorkerState

from poolctl.audit import AuditLog
from poolctl.backends.base import Backend, Capabilities
from poolctl.errors import describe
from poolctl.format import size
from poolctl.migration.autotune import TunedPlan, plan_move, retune
from poolctl.migration.controller import MigrationPlan
from poolctl.migration.cross_pool import Destination, move_options, placing
from poolctl.migration.network import network_choices, network_curable
from poolctl.migration.storage import CopyRate, copy_rate, map_curable, movable_disks
from poolctl.migration.tuner import TuneRequest
from poolctl.model import VM, Host, MigrationCheck, MigrationOptions, Network, StorageRepository
from poolctl.safe_text import shown, shown_line
from poolctl.tui.screens import migrate_fields as fields
from poolctl.tui.screens.migrate_fields import DEFAULT_INTERVAL_MS
from poolctl.tui.screens.migrate_words import not_started, storage_words
from poolctl.tui.widgets.destination_list import DestinationList
from poolctl.tui.widgets.disk_targets import DiskMap, DiskTargets
from poolctl.tui.widgets.network_choice import NetworkChoice

HOSTS_MAX = 12  # the host list's most rows; fewer when the screen is short (it scrolls then)


class HostChecked(Message):
    def __init__(self, host: str, check: MigrationCheck, placing: MigrationOptions) -> None:
        super().__init__()
        self.host = host
        self.check = check
        self.placing = placing  # the disk map and network it was checked with: a stale answer is dropped


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
        networks: Sequence[Network] = (),
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
        own = [Destination(h, tuple(srs), networks=tuple(networks)) for h in hosts]
        self.destinations = own + list(elsewhere)
        self._by_key = {d.key: d for d in self.destinations}
        self.not_offered = tuple(not_offered)  # other pools not offered, each with why
        self.source_name = source_name
        self.capabilities = capabilities
        self.interval_ms = interval_ms
        self.ping_port = ping_port
        self.defaults = tuning or TuneRequest()  # the config's [migration] tuning keys
        self.host_list = DestinationList(self.destinations, id="migrate-hosts")
        self.checks: dict[str, MigrationCheck] = {}
        self.predictions: dict[str, TunedPlan] = {}  # destination -> the tuner's plan (its inputs measured once)
        self._workers: dict[Worker[None], str] = {}
        # storage motion: a row per disk that may be copied (none: a plain pool migration)
        disks = movable_disks(vm) if capabilities.storage_motion else []
        self.targets = DiskTargets(vm, disks, srs, self.destinations, id="migrate-disks") if disks else None
        # the migration network, where the backend can choose it and there is one to choose
        net = capabilities.migration_network and any(network_choices(d.networks) for d in self.destinations)
        self.network = NetworkChoice(self.destinations, id="migrate-network-row") if net else None
        # host -> the placing (move_options: disk map, network, pool) its check is for
        self.checked: dict[str, MigrationOptions] = {}
        self.pending: set[str] = set()  # hosts being checked again with a new map or network
        self._asked: dict[str, MigrationOptions] = {}  # host -> the placing of its newest pre-check
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
            yield self.host_list
            if self.not_offered:
                yield Label("not offered: " + "; ".join(self.not_offered), id="migrate-elsewhere", markup=False)
            if self.targets is not None:
                yield self.targets
                yield Label("", id="migrate-storage", markup=False)
            if self.network is not None:
                yield self.network
            yield from fields.rows(vm, self.interval_ms, self.ping_port, self.defaults, self.capabilities)
            yield Label("predicting…", id="migrate-prediction", markup=False)
            yield Label("", id="migrate-error", markup=False)
            on_list = {
                (True, True): " (on a disk or network: choose)",
                (True, False): " (on a disk: choose its SR)",
                (False, True): " (on the network: choose it)",
            }.get((self.targets is not None, self.network is not None), "")
            yield Label(f"Enter migrate{on_list} · Tab next field · Esc close", id="migrate-keys")

    def on_mount(self) -> None:
        self.host_list.focus()
        if not self.destinations:
            self._say("This pool has no other host to move to.")
        for dest in self.destinations:
            self._recheck(dest.key)
        self._show_choices()
        self._refit()

    def on_resize(self) -> None:
        self._refit()

    def _refit(self) -> None:
        self.call_after_refresh(self._fit_hosts)

    def _fit_hosts(self) -> None:
        """The host list gets what the other rows leave of the screen, so that with other pools'
        hosts the keys line still shows at 80x24 (the list scrolls)."""
        box = self.query_one("#migrate-box")
        hosts = self.host_list
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
        option = self.host_list.highlighted_option
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
        """Pre-check ``host`` with the disk map and network it has now."""
        placing = self._placing(host)
        self._asked[host] = placing
        if host in self.checks:
            self.pending.add(host)
        worker = self._check(host, placing)
        self._workers[worker] = host

    @work(thread=True, exit_on_error=False, group="precheck")
    def _check(self, host: str, placing: MigrationOptions) -> None:
        rate = self.copy_rate().mib_s if placing.disk_srs else 0.0
        check = self.backend.check_move(self.vm.ref, self._by_key[host].host.ref, placing, rate)
        self.post_message(HostChecked(host, check, placing))

    def copy_rate(self) -> CopyRate:
        """The disk copy's estimated rate, measured or configured (reads the audit log once)."""
        with self._rate_lock:
            if self._rate is None:
                records, _problems = (self.audit or AuditLog()).read()
                self._rate = copy_rate(self.pool, self.configured_rate, records)
            return self._rate

    def on_host_checked(self, msg: HostChecked) -> None:
        if msg.placing == self._placing(msg.host):
            self._set_verdict(msg.host, msg.check, msg.placing)

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
                self._placing(host),
            )

    def _set_verdict(self, host_ref: str, check: MigrationCheck, placing: MigrationOptions) -> None:
        self.checks[host_ref] = check
        self.checked[host_ref] = placing
        self.pending.discard(host_ref)
        if host_ref == self._view_host():
            self._show_storage()
            self._show_prediction()  # a new map copies other disks: the prediction follows
        self._refit()
        # a host refused only for where the disks go or the network stays choosable: other choices may cure it
        curable = (self.targets is not None and map_curable(check)) or (self.network and network_curable(check))
        self.host_list.set_verdict(self._by_key[host_ref], check, check.ok or bool(curable))
        if check.ok and host_ref not in self.predictions:
            try:
                self._predict(host_ref, self._request(), fields.probe_interval_s(self))
            except ValueError:
                pass  # a bad field: said at Enter
        self.host_list.follow(self.checks)

    @on(OptionList.OptionHighlighted, "#migrate-hosts")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self._show_prediction()
        self._show_choices()

    # --- where the disks go ----------------------------------------------------------------

    def _view_host(self) -> str | None:
        return self.host_list.in_view

    def _disk_srs(self, host: str) -> DiskMap:
        return self.targets.disk_srs(host) if self.targets is not None else ()

    def _placing(self, host: str) -> MigrationOptions:
        """What a move to ``host`` is checked and sent with: the disk map, network and pool chosen now."""
        network = self.network.network(host) if self.network is not None else None
        return move_options(disk_srs=self._disk_srs(host), network=network, to_pool=self._by_key[host].pool)

    def _show_choices(self) -> None:
        """The disk rows and the network for the host in view."""
        if self.network is not None:
            self.network.show(self._view_host())
        if self.targets is not None:
            self.targets.show(self._view_host())
            self._show_storage()

    def on_disk_targets_picked(self, event: DiskTargets.Picked) -> None:
        event.stop()
        self.host_list.user_moved = True  # as for a network: the highlight stays on the host chosen for
        # every host whose map the pick changes (those that see the SR): the list's verdicts stay true
        self._recheck_changed()

    def on_network_choice_picked(self, event: NetworkChoice.Picked) -> None:
        event.stop()
        self.host_list.user_moved = True  # the highlight stays on the host the user is choosing for
        self._recheck_changed()

    def _recheck_changed(self) -> None:
        for d in self.destinations:
            if self._placing(d.key) != self._asked.get(d.key):
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
        if host in self.pending or self.checked.get(host) != self._placing(host):
            check = None  # its verdict is for other choices
        self.query_one("#migrate-storage", Label).update(storage_words(self._by_key[host].label, check, self.copy_rate))

    # --- starting --------------------------------------------------------------------------

    @on(OptionList.OptionSelected, "#migrate-hosts")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self._start()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Enter on a list (a disk's SR, the network) opens or picks from it: the priority Enter lets it through
        if action == "start" and isinstance(self.focused, Select | SelectOverlay):
            return False
        return True

    def action_start(self) -> None:
        self._start()

    def _start(self) -> None:
        option = self.host_list.highlighted_option
        if option is None or option.disabled or option.id not in self.checks:
            usable = [d for d in self.destinations if self.checks.get(d.key) and self.checks[d.key].ok]
            self._say(not_started(len(self.checks), len(self.destinations), len(usable)))
            return
        if option.id in self.pending or self.checked.get(option.id) != self._placing(option.id):
            self._say("Still checking the host with the new choices…")
            return
        check = self.checks[option.id]
        if not check.ok:
            self._say(
                "The host cannot take it over that network: choose another (see above)."
                if network_curable(check)
                else "The host cannot take the disks so: choose other SRs for them (see above)."
            )
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
        # where it goes as that check had it: the disk map, network and pool
        options = tuned.tuning.options.model_copy(update=placing(self.checked[host_ref]))
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

    def action_close(self) -> None:
        self.dismiss(None)
