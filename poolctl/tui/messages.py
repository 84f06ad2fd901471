"""Messages that carry backend news onto the UI thread, store news to the screens, and what
the user asked for from the screens to the app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.message import Message

from poolctl.backends.base import Backend
from poolctl.model import VM, Change, ConnectionState, Inventory, PowerOp
from poolctl.tui.session import PoolSession

if TYPE_CHECKING:  # the batch code is imported with the first batch, not before the first paint
    from poolctl.migration.batch import BatchEvent


@dataclass
class Selection:
    """What the user points at: a pool, host, SR, network or VM of one pool."""

    pool: str
    kind: str  # "pool" | "host" | "sr" | "network" | "vm" | "storage" | "networks"
    ref: str | None = None


class InventoryLoaded(Message, bubble=False):
    """A backend connected and delivered its first snapshot (posted from a worker thread)."""

    def __init__(self, pool: str, backend: Backend, inventory: Inventory) -> None:
        super().__init__()
        self.pool = pool
        self.backend = backend
        self.inventory = inventory


class ChangesPending(Message, bubble=False):
    """A pool's change buffer went from empty to non-empty: drain it (posted from any thread)."""

    def __init__(self, pool: str) -> None:
        super().__init__()
        self.pool = pool


class ConnectionChanged(Message, bubble=False):
    """A pool's connection state changed (posted from any thread)."""

    def __init__(self, state: ConnectionState) -> None:
        super().__init__()
        self.state = state


class InventoryUpdated(Message, bubble=False):
    """The app applied ``changes`` to a pool's store; widgets redraw what they show.

    ``changes`` holds only changes that did change something, in arrival order. Posted to
    the main screen once per drained batch, so a burst of 10,000 adds is one message.
    ``loaded`` is True for the first snapshot (and a reconnect's fresh one).
    """

    def __init__(self, pool: str, changes: list[Change], *, loaded: bool = False) -> None:
        super().__init__()
        self.pool = pool
        self.changes = changes
        self.loaded = loaded


class PowerRequested(Message):
    """The user asked for ``op`` on ``vm`` of ``session`` (and confirmed it, if it asks first)."""

    def __init__(self, session: PoolSession, vm: VM, op: PowerOp) -> None:
        super().__init__()
        self.session = session
        self.vm = vm
        self.op = op


class BatchEventArrived(Message, bubble=False):
    """The batch runner said something (posted from the batch's thread to its panel)."""

    def __init__(self, event: BatchEvent) -> None:
        super().__init__()
        self.event = event


class BatchNote(Message, bubble=False):
    """The batch's own news around the runner (posted from its thread to its panel): the host
    disabled, or why the batch stopped before or after the moves (``problem``); ``ended``: the
    batch thread is done."""

    def __init__(self, text: str, *, problem: bool = False, ended: bool = False) -> None:
        super().__init__()
        self.text = text
        self.problem = problem
        self.ended = ended
