"""The batch dialog: the plan of an evacuation, a bulk move or a restore, before anything moves.

The plan is computed in a worker thread (the backend's pre-checks of every VM against every
candidate host, and for an evacuation the hypervisor's own verdict), then shown as VM →
destination rows. A VM that cannot go is named with the reasons; then, unless the caller
allows a partial batch (a restore), there is no Start button, and the dialog says why. The
user picks how many moves run at once (auto or a number) and starts, or closes.

An evacuation may offer SRs to copy local disks to (storage motion, as `poolctl evacuate --sr`):
"local disks stay" (a VM with one cannot go) or "copy local disks to SR"; the plan is made
again for the choice, and the rows say what each VM's copy moves. Where the backend can choose
the migration network (as `poolctl evacuate --network`), it offers the pool's networks too
(widgets/network_choice, the migrate dialog's list; the default is each destination's management
network): the plan is made again over the network picked, and every move of it takes that one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static
from textual.worker import Worker, WorkerState

from poolctl.errors import describe
from poolctl.format import size
from poolctl.migration.many import Batch
from poolctl.migration.network import network_choices
from poolctl.migration.planner import Placement, Plan
from poolctl.model import Host, Network, StorageRepository
from poolctl.safe_text import shown, shown_line, shown_lines
from poolctl.tui.widgets.network_choice import NetworkChoice

Planner = Callable[[str | None], Plan]  # destination ref (bulk move) or None -> plan; blocks
# an evacuation's plan for the choices made: (the SR ref local disks are copied to, the migration
# network's ref), either None when not chosen -> plan; blocks
ChoicePlanner = Callable[[str | None, str | None], Plan]
BATCH_MAX = 64
NO_COPY = "\0stay"  # the SR choice "local disks stay"


@dataclass(frozen=True)
class BatchChoice:
    plan: Plan  # only the moves that can go (each with the disks it copies, if any)
    batch: Batch
    destination: str | None = None
    sr: str | None = None  # the SR local disks are copied to, when one was chosen
    network: str | None = None  # the migration network's ref every move takes; None: the management one


class Planned(Message):
    def __init__(self, destination: str | None, plan: Plan, sr: str | None = None, network: str | None = None) -> None:
        super().__init__()
        self.destination = destination
        self.plan = plan
        self.sr = sr
        self.network = network


def parse_batch(text: str) -> Batch:
    """``auto`` or a whole number of moves at once; ValueError in words otherwise."""
    text = text.strip().lower()
    if text in ("", "auto"):
        return "auto"
    try:
        n = int(text)
    except ValueError:
        raise ValueError(f"at once: 'auto' or a number, not {text!r}") from None
    if not 1 <= n <= BATCH_MAX:
        raise ValueError(f"at once: between 1 and {BATCH_MAX}, got {n}")
    return n


class BatchDialog(ModalScreen[BatchChoice | None]):
    DEFAULT_CSS = """
    BatchDialog { align: center middle; }
    #bd-box {
        width: 100; max-width: 98%; height: auto; max-height: 95%;
        border: thick $accent; border-title-style: bold; padding: 0 1; background: $surface;
        overflow-y: auto;  /* many blockers at 80x24: the buttons stay reachable */
    }
    #bd-intro { width: 1fr; }
    #bd-plan-box { height: auto; max-height: 12; margin: 1 0 0 0; }
    #bd-why { height: auto; max-height: 8; margin-top: 1; display: none; }
    #bd-dest { margin-top: 1; }
    #bd-sr { margin-top: 1; }
    #bd-network-row { margin: 1 0 0 0; }
    .bd-row { height: 1; margin-top: 1; }
    .bd-row Input { border: none; height: 1; width: 8; padding: 0 1; background: $boost; }
    .bd-row Input:focus { background: $accent 30%; }
    .bd-label { padding: 0 1; }
    #bd-hint { color: $text-muted; width: 1fr; }
    #bd-error { color: $warning; display: none; margin-top: 1; }
    #bd-buttons { height: 3; margin-top: 1; }
    #bd-buttons Button { margin-right: 2; }
    """
    BINDINGS = [
        Binding("escape", "close", "Close", tooltip="Batch dialog: close without moving anything", id="plan.close"),
    ]

    def __init__(
        self,
        title: str,
        intro: str,
        planner: Planner,
        *,
        start_label: str = "Start",
        destinations: Sequence[Host] = (),
        partial: bool = False,
        empty_text: str = "Nothing to move.",
        allow_empty: bool = False,
        copy_srs: Sequence[StorageRepository] = (),
        networks: Sequence[Network] = (),
        choice_planner: ChoicePlanner | None = None,
    ) -> None:
        super().__init__()
        self.title_text = title
        self.intro = intro
        self.planner = planner
        self.start_label = start_label
        self.destinations = list(destinations)
        self.partial = partial  # the VMs that can go may go without the blocked ones (a restore)
        self.empty_text = empty_text
        self.allow_empty = allow_empty  # Start with nothing to move (an evacuation still disables the host)
        self.plan: Plan | None = None
        self.destination: str | None = self.destinations[0].ref if self.destinations else None
        # the SRs and networks offered (each given only where the backend can use them)
        self.copy_srs = list(copy_srs) if choice_planner is not None else []
        offered = network_choices(networks) if choice_planner is not None else []
        self.network_choice = (
            NetworkChoice.of_pool(offered, id="bd-network-row", select_id="bd-network") if offered else None
        )
        self.choice_planner = choice_planner
        self.sr: str | None = None  # the SR chosen for local disks; None: they stay
        self.network: str | None = None  # the migration network chosen; None: the management network

    def compose(self) -> ComposeResult:
        with Vertical(id="bd-box") as box:
            box.border_title = Text(shown_line(self.title_text))  # Text: a str title is markup
            yield Label(shown_lines(self.intro), id="bd-intro", markup=False)
            if self.destinations:
                yield Select(
                    [(f"to {shown(h.name)} ({size(h.memory_free)} free)", h.ref) for h in self.destinations],
                    value=self.destinations[0].ref,
                    allow_blank=False,
                    id="bd-dest",
                )
            if self.copy_srs:
                yield Select(
                    [("local disks stay (a VM with one cannot go)", NO_COPY)]
                    + [(f"copy local disks to {shown(sr.name)} (storage motion)", sr.ref) for sr in self.copy_srs],
                    value=NO_COPY,
                    allow_blank=False,
                    id="bd-sr",
                )
            if self.network_choice is not None:
                yield self.network_choice
            with VerticalScroll(id="bd-plan-box"):
                yield Static("planning: pre-checking every VM against the hosts…", id="bd-plan", markup=False)
            yield Static("", id="bd-why", markup=False)
            with Horizontal(classes="bd-row", id="bd-batch-row"):
                yield Label("at once", classes="bd-label")
                yield Input("auto", id="bd-batch")
                yield Label("auto: one first, more while no probe is lost; or a number", id="bd-hint", markup=False)
            yield Label("", id="bd-error", markup=False)
            with Horizontal(id="bd-buttons"):
                yield Button(self.start_label, id="bd-start", variant="primary", disabled=True)
                yield Button("Close", id="bd-close")

    def on_mount(self) -> None:
        self.query_one("#bd-close", Button).focus()
        self._plan(self.destination)

    # --- planning --------------------------------------------------------------------------

    @work(thread=True, exit_on_error=False, group="batch-plan", exclusive=True)
    def _plan(self, destination: str | None) -> None:
        sr, network = self.sr, self.network
        if (sr is not None or network is not None) and self.choice_planner is not None:
            self.post_message(Planned(destination, self.choice_planner(sr, network), sr, network))
        else:
            self.post_message(Planned(destination, self.planner(destination)))

    def on_planned(self, msg: Planned) -> None:
        if msg.destination != self.destination or msg.sr != self.sr or msg.network != self.network:
            return  # an older choice's plan
        self.plan = msg.plan
        self._show(msg.plan)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        event.stop()
        if event.worker.group == "batch-plan" and event.state == WorkerState.ERROR and event.worker.error:
            self.query_one("#bd-plan", Static).update(f"planning failed: {describe(event.worker.error)}")
            self._set_start(False)

    @on(Select.Changed, "#bd-dest")
    def _destination_changed(self, event: Select.Changed) -> None:
        value = event.value
        if not isinstance(value, str) or value == self.destination:
            return
        self.destination = value
        self.plan = None
        self.query_one("#bd-plan", Static).update("planning: pre-checking every VM against the host…")
        self.query_one("#bd-why", Static).display = False
        self._set_start(False)
        self._plan(value)

    @on(Select.Changed, "#bd-sr")
    def _sr_changed(self, event: Select.Changed) -> None:
        value = event.value
        sr = value if isinstance(value, str) and value != NO_COPY else None
        if sr == self.sr:
            return
        self.sr = sr
        self._replan("planning: pre-checking every VM against the hosts…")

    def on_network_choice_picked(self, event: NetworkChoice.Picked) -> None:
        event.stop()
        network = self.network_choice.chosen if self.network_choice is not None else None
        if network == self.network:
            return
        self.network = network
        self._replan("planning: pre-checking every VM against the hosts over the network chosen…")

    def _replan(self, words: str) -> None:
        self.plan = None
        self.query_one("#bd-plan", Static).update(words)
        self.query_one("#bd-why", Static).display = False
        self._set_start(False)
        self._plan(self.destination)

    def _show(self, plan: Plan) -> None:
        table = Table(box=None, padding=(0, 1), expand=False, show_edge=False)
        for name, justify in (("VM", "left"), ("MEMORY", "right"), ("FROM", "left"), ("TO", "left")):
            table.add_column(name, justify=justify, no_wrap=True, header_style="bold")  # type: ignore[arg-type]
        for p in plan.placements:
            to = (
                Text(f"→ {shown(p.destination.name)}")
                if p.destination is not None
                else Text("✗ cannot go", style="bold")
            )
            if p.disk_srs:
                to.append(f"  (copies {_copied(p)})")
            table.add_row(Text(shown(p.vm.name)), size(p.vm.memory), Text(shown(p.source_name)), to)
        plan_view = self.query_one("#bd-plan", Static)
        why = self.query_one("#bd-why", Static)
        if not plan.placements:
            plan_view.update(shown_lines(self.empty_text))
            why.display = False
            self._set_start(self.allow_empty)
            self.query_one("#bd-batch-row").display = False
            return
        plan_view.update(table)
        blocked = plan.blocked
        lines = [f"✗ {shown(p.vm.name)}: {shown_line(reason)}" for p in blocked for reason in p.reasons]
        lines += [f"{shown(p.vm.name)}: {shown_line(c)}" for p in plan.moves for c in p.copies]
        if blocked and self.partial and plan.moves:
            lines.append(f"The {len(blocked)} VM(s) that cannot go stay where they are; the others can move.")
        elif blocked:
            names = ", ".join(shown(p.vm.name) for p in blocked)
            if plan.needs_storage_motion and self.copy_srs:
                fix = "Their local disks can be copied: choose an SR under 'local disks' above (storage motion)."
            elif plan.refused_over_network and self.network_choice is not None:
                fix = "A host cannot receive them over the network chosen: choose another network above."
            elif plan.needs_storage_motion:
                fix = "A local disk needs storage motion, which this pool's backend does not offer."
            else:
                fix = "Fix that first."
            lines.append(f"Nothing can move: {len(blocked)} of {len(plan.placements)} VMs cannot go ({names}). {fix}")
        why.update("\n".join(lines))
        why.display = bool(lines)
        self._set_start(bool(plan.moves) and (self.partial or not blocked))

    def _set_start(self, ok: bool) -> None:
        start = self.query_one("#bd-start", Button)
        start.disabled = not ok
        start.display = ok  # no Start button while nothing may move
        self.query_one("#bd-batch-row").display = ok
        if ok:
            start.focus()

    # --- starting --------------------------------------------------------------------------

    @on(Button.Pressed, "#bd-start")
    def _start_pressed(self) -> None:
        self.action_start()

    @on(Input.Submitted, "#bd-batch")
    def _batch_submitted(self) -> None:
        self.action_start()

    @on(Button.Pressed, "#bd-close")
    def _close_pressed(self) -> None:
        self.dismiss(None)

    def action_start(self) -> None:
        plan = self.plan
        if plan is None or (not plan.moves and not self.allow_empty) or (plan.blocked and not self.partial):
            return
        try:
            batch = parse_batch(self.query_one("#bd-batch", Input).value)
        except ValueError as exc:
            error = self.query_one("#bd-error", Label)
            error.update(str(exc))
            error.display = True
            return
        self.dismiss(BatchChoice(Plan(plan.moves), batch, self.destination, self.sr, self.network))

    def action_close(self) -> None:
        self.dismiss(None)


def _copied(p: Placement) -> str:
    """The size a placement's copy moves, from the pre-check's words (its "N in all" line)."""
    total = next((c.split(" in all", 1)[0] for c in p.copies if " in all" in c), "")
    return f"{shown(total)} of disks" if total else "its local disks"
