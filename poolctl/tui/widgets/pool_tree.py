"""Pools -> hosts, with each pool's storage and networks; labels say state in words."""

from __future__ import annotations

from collections.abc import Iterable

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from poolctl import format as fmt
from poolctl.inventory import InventoryStore
from poolctl.model import Change, ConnectionStatus, Host, Network, StorageRepository
from poolctl.safe_text import shown, shown_line
from poolctl.tui.messages import Selection
from poolctl.tui.session import PoolSession

NodeKey = tuple[str, str, str | None]  # (pool, kind, ref)
HOST_INDENT = 2  # the guide before a host ("├ ")


def host_label(host: Host, store: InventoryStore, room: int | None = None) -> Text:
    """Name, state, VM count and free memory; in a narrow tree (``room`` cells) free memory
    goes first, then the count, so the state is the last thing to be clipped."""
    count = store.vm_count(host.ref)
    free = fmt.short_size(host.memory_free)
    vms = f"{count} VM{'s' if count != 1 else ''}"
    tails = [f" {vms} {free} free", f" {vms}", ""]
    state = f" {fmt.host_state(host)}"
    name = shown(host.name)
    tail = next((t for t in tails if room is None or cell_len(name + state + t) <= room), "")
    text = Text(name)
    text.append(state, style="bold" if host.live and host.enabled else "reverse")
    text.append(tail, style="dim")
    return text


def sr_label(sr: StorageRepository) -> Text:
    text = Text(shown(sr.name))
    text.append(f" {shown(sr.type)}{' shared' if sr.shared else ''}", style="dim")
    return text


def network_label(net: Network) -> Text:
    text = Text(shown(net.name))
    if net.bridge:
        text.append(f" {shown(net.bridge)}", style="dim")
    return text


class PoolTree(Tree[Selection]):
    def __init__(self, *, id: str | None = None, classes: str | None = None):
        super().__init__("pools", id=id, classes=classes)
        self.show_root = False
        self.guide_depth = 2
        self._node_map: dict[NodeKey, TreeNode[Selection]] = {}
        self._stores: dict[str, InventoryStore] = {}  # pool -> store, to relabel on resize
        self._room: int | None = None

    def on_resize(self) -> None:
        # host labels are fitted to the width: a narrow tree gets the compact form
        room = max(8, self.scrollable_content_region.width - HOST_INDENT)
        if room != self._room:
            self._room = room
            for pool, store in self._stores.items():
                self._relabel_hosts(pool, store)

    def _relabel_hosts(self, pool: str, store: InventoryStore) -> None:
        for host in store.hosts.values():
            node = self.node_for(pool, "host", host.ref)
            if node is not None:
                node.set_label(host_label(host, store, self._room))

    def node_for(self, pool: str, kind: str, ref: str | None = None) -> TreeNode[Selection] | None:
        return self._node_map.get((pool, kind, ref))

    def add_pool(self, session: PoolSession) -> TreeNode[Selection]:
        node = self.root.add(self._pool_label(session), data=Selection(session.name, "pool"), expand=True)
        self._node_map[(session.name, "pool", None)] = node
        return node

    def set_status(self, session: PoolSession) -> None:
        node = self.node_for(session.name, "pool")
        if node is not None:
            node.set_label(self._pool_label(session))

    def _pool_label(self, session: PoolSession) -> Text:
        text = Text(shown(session.name), style="bold")
        status = session.state.status
        style = "dim" if status in (ConnectionStatus.CONNECTED, ConnectionStatus.CONNECTING) else "reverse"
        text.append(" ")
        text.append(shown_line(session.status_text()), style=style)
        return text

    def load(self, session: PoolSession) -> None:
        """(Re)build a pool's children from its store (first snapshot or a reconnect)."""
        pool_node = self.node_for(session.name, "pool")
        store = session.store
        if pool_node is None or store is None:
            return
        for key in [k for k in self._node_map if k[0] == session.name and k[1] != "pool"]:
            del self._node_map[key]
        pool_node.remove_children()
        self._stores[session.name] = store
        for host in sorted(store.hosts.values(), key=lambda h: (not h.is_master, h.name.casefold())):
            self._add(session.name, pool_node, "host", host.ref, host_label(host, store, self._room))
        storage = pool_node.add("Storage", data=Selection(session.name, "storage"), expand=False)
        self._node_map[(session.name, "storage", None)] = storage
        for sr in sorted(store.srs.values(), key=lambda s: s.name.casefold()):
            self._add(session.name, storage, "sr", sr.ref, sr_label(sr))
        networks = pool_node.add("Networks", data=Selection(session.name, "networks"), expand=False)
        self._node_map[(session.name, "networks", None)] = networks
        for net in sorted(store.networks.values(), key=lambda n: n.name.casefold()):
            self._add(session.name, networks, "network", net.ref, network_label(net))
        pool_node.expand()

    def _add(self, pool: str, parent: TreeNode[Selection], kind: str, ref: str, label: Text) -> None:
        if kind == "host":
            # hosts go before the "Storage" group node
            before = self.node_for(pool, "storage")
            node = parent.add_leaf(label, data=Selection(pool, kind, ref), before=before)
        else:
            node = parent.add_leaf(label, data=Selection(pool, kind, ref))
        self._node_map[(pool, kind, ref)] = node

    def apply(self, session: PoolSession, changes: Iterable[Change]) -> None:
        store = session.store
        if store is None:
            return
        relabel_hosts = False
        for c in changes:
            if c.object_kind == "vm":
                relabel_hosts = True  # counts per host may have moved
            elif c.object_kind in ("host", "sr", "network"):
                self._apply_object(session, store, c)
        if relabel_hosts:
            self._relabel_hosts(session.name, store)

    def _apply_object(self, session: PoolSession, store: InventoryStore, c: Change) -> None:
        key = (session.name, c.object_kind, c.ref)
        node = self._node_map.get(key)
        label = self._object_label(store, c.object_kind, c.ref)
        if label is None:
            if node is not None:
                node.remove()
                del self._node_map[key]
            return
        if node is not None:
            node.set_label(label)
            return
        parent = {
            "host": self.node_for(session.name, "pool"),
            "sr": self.node_for(session.name, "storage"),
            "network": self.node_for(session.name, "networks"),
        }[c.object_kind]
        if parent is not None:
            self._add(session.name, parent, c.object_kind, c.ref, label)

    def _object_label(self, store: InventoryStore, kind: str, ref: str) -> Text | None:
        """The label of a host, SR or network node; None when the store no longer has it."""
        if kind == "host":
            host = store.hosts.get(ref)
            return host_label(host, store, self._room) if host is not None else None
        if kind == "sr":
            sr = store.srs.get(ref)
            return sr_label(sr) if sr is not None else None
        net = store.networks.get(ref)
        return network_label(net) if net is not None else None
