"""The migration network (Capabilities.migration_network) of the migrate and evacuate dialogs: a
Select of the networks a move may take (poolctl.migration.network), first the default, the
host's management network (what `poolctl migrate` and `poolctl evacuate` take without
--network). The migrate dialog lists the networks of the destination in view's pool and keeps a
pick per pool: it applies to every destination of that pool, which is pre-checked again with it.
The evacuate dialog lists its one pool's (``NetworkChoice.of_pool``): every move of the batch
takes the pick."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Label, Select

from poolctl.migration.cross_pool import Destination
from poolctl.migration.network import network_choices
from poolctl.model import Network
from poolctl.safe_text import shown

DEFAULT = ""  # the list's value for the management network (MigrationOptions.network None)


class NetworkChoice(Horizontal):
    DEFAULT_CSS = """
    NetworkChoice { height: 1; margin-bottom: 1; }
    NetworkChoice .network-label { padding: 0 1; }
    NetworkChoice Select { width: 1fr; }
    """

    class Picked(Message):
        """The user chose another network for the pool of the destination in view."""

    def __init__(
        self,
        destinations: Sequence[Destination],
        *,
        id: str,
        select_id: str = "migrate-network",
        networks: Sequence[Network] | None = None,
    ) -> None:
        super().__init__(id=id)
        self.destinations = {d.key: d for d in destinations}
        self.select_id = select_id
        self.networks: dict[str | None, tuple[Network, ...]] = {}  # pool (None: the VM's own) -> its networks
        for d in destinations:
            self.networks.setdefault(d.pool, d.networks)
        if networks is not None:
            self.networks[None] = tuple(networks)
        self.picked: dict[str | None, str] = {}  # pool (None: the VM's own) -> network ref chosen
        self.pool: str | None = destinations[0].pool if destinations else None  # the pool in view
        self._listed: list[str] = []  # the refs the list offers now
        self._shown = DEFAULT  # the value show() gave it: a Changed with another is the user's pick

    @classmethod
    def of_pool(cls, networks: Sequence[Network], *, id: str, select_id: str) -> NetworkChoice:
        """The list of one pool's networks, whatever the destination (an evacuation's batch)."""
        return cls((), id=id, select_id=select_id, networks=networks)

    @property
    def chosen(self) -> str | None:
        """``MigrationOptions.network`` for the pool in view: its pick, None for the default."""
        return self.picked.get(self.pool)

    def compose(self) -> ComposeResult:
        yield Label("network", classes="network-label")
        options = self._options(self.pool)
        self._listed = [v for _, v in options]
        yield Select(options, value=DEFAULT, allow_blank=False, id=self.select_id, compact=True)

    def network(self, host: str) -> str | None:
        """``MigrationOptions.network`` for a move to ``host``: the pick for its pool, if any."""
        dest = self.destinations.get(host)
        return self.picked.get(dest.pool) if dest is not None else None

    def show(self, host: str | None) -> None:
        """The list for ``host``'s pool, at that pool's pick."""
        dest = self.destinations.get(host) if host is not None else None
        if dest is None:
            return
        self.pool = dest.pool
        select: Select[str] = self.query_one(f"#{self.select_id}", Select)
        options = self._options(dest.pool)
        if [v for _, v in options] != self._listed:
            self._listed = [v for _, v in options]
            select.set_options(options)
        self._shown = self.picked.get(dest.pool, DEFAULT)
        if select.value != self._shown:
            select.value = self._shown

    @on(Select.Changed)
    def _changed(self, event: Select.Changed) -> None:
        event.stop()
        if event.value in (Select.NULL, self._shown):
            return  # set by show(), not a pick
        self._shown = str(event.value)
        if event.value == DEFAULT:
            self.picked.pop(self.pool, None)
        else:
            self.picked[self.pool] = str(event.value)
        self.post_message(self.Picked())

    def _options(self, pool: str | None) -> list[tuple[Text, str]]:
        return [(Text("default: the host's management network"), DEFAULT)] + [
            (Text(shown(n.name)), n.ref) for n in network_choices(self.networks.get(pool, ()))
        ]
