"""The details pane: every field of the selected pool, host, SR, network or VM."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from poolctl import format as fmt
from poolctl.inventory import InventoryStore
from poolctl.model import VM, Change, Host, Network, PowerState, StorageRepository
from poolctl.safe_text import shown, shown_line, shown_lines
from poolctl.tui.messages import Selection
from poolctl.tui.session import PoolSession


def _grid(rows: list[tuple[str, str | Text]]) -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for key, value in rows:
        # Every value may be a hypervisor's string; Text values were made safe when built.
        grid.add_row(key, value if isinstance(value, Text) else shown_line(value))
    return grid


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _names(store: InventoryStore, refs: Iterable[str]) -> str:
    return ", ".join(sorted(shown(store.name_of(r)) for r in refs)) or "none"


def host_rows(host: Host, store: InventoryStore) -> list[tuple[str, str | Text]]:
    cpu = " ".join(p for p in (host.cpu_vendor, host.cpu_model) if p) or "unknown"
    running = store.vm_count(host.ref)
    return [
        ("Host", Text(shown_line(host.name), style="bold")),
        ("State", fmt.host_state(host)),
        ("Enabled", _yes(host.enabled)),
        ("Live", _yes(host.live)),
        ("Role", "pool master" if host.is_master else "member"),
        ("Address", host.address or "unknown"),
        ("CPU", f"{host.cpu_count} × {cpu}" if host.cpu_count else cpu),
        (
            "Memory",
            f"{fmt.size(host.memory_free)} free of {fmt.size(host.memory_total)}",
        ),
        ("Software", host.software_version or "unknown"),
        ("Resident VMs", str(running)),
        *_evacuated(host, store),
    ]


def _evacuated(host: Host, store: InventoryStore) -> list[tuple[str, str | Text]]:
    """What the host's last evacuation moved away (a restore's list), while it is on record."""
    if not host.evacuated:
        return []
    by_uuid = {vm.uuid: shown(vm.name) for vm in store.vms.values()}
    names = sorted(by_uuid.get(u, u) for u in host.evacuated)
    return [("Evacuated", f"{', '.join(names)} (D enables the host and offers to bring them back)")]


def _count_vms(store: InventoryStore, pred: Callable[[VM], bool]) -> str:
    """How many VMs ``pred`` holds for, by their devices; while those are still being read
    (a staged load) the count would be low, so it says so."""
    vms = store.vms.values()
    if not all(vm.devices_known for vm in vms):
        return "reading…"
    return str(sum(1 for vm in vms if pred(vm)))


def sr_rows(sr: StorageRepository, store: InventoryStore) -> list[tuple[str, str | Text]]:
    pct = f" ({sr.used * 100 // sr.size}%)" if sr.size else ""
    vms = _count_vms(store, lambda vm: any(d.sr == sr.ref for d in vm.disks))
    return [
        ("SR", Text(shown_line(sr.name), style="bold")),
        ("Type", sr.type + (f" ({sr.content_type})" if sr.content_type else "")),
        ("Shared", _yes(sr.shared)),
        ("Size", fmt.size(sr.size)),
        ("Used", f"{fmt.size(sr.used)}{pct}"),
        ("Seen by", _names(store, sr.hosts)),
        ("VMs with disks", vms),
    ]


def network_rows(net: Network, store: InventoryStore) -> list[tuple[str, str | Text]]:
    vms = _count_vms(store, lambda vm: net.ref in vm.networks)
    return [
        ("Network", Text(shown_line(net.name), style="bold")),
        ("Bridge", net.bridge or "none"),
        ("On hosts", _names(store, net.hosts)),
        ("VMs on it", vms),
    ]


def vm_rows(vm: VM, store: InventoryStore) -> list[tuple[str, str | Text]]:
    disks = Text()
    for i, d in enumerate(vm.disks):
        if i:
            disks.append("\n")
        kind = "cdrom " if d.cdrom else ""
        size = f" {fmt.size(d.size)}" if d.size or not d.cdrom else ""
        disks.append(f"{shown(d.device or '?')} {kind}{shown(d.name)}{size}")
        if d.sr or not d.cdrom:
            disks.append(" on ")
            disks.append(shown(store.name_of(d.sr)) if d.sr else "no known SR", style="bold")
    nics = Text()
    for i, n in enumerate(vm.nics):
        if i:
            nics.append("\n")
        nics.append(f"{shown(n.device or '?')} {shown(n.mac)} on ")
        nics.append(shown(store.name_of(n.network)) if n.network else "no network", style="bold")
    host = store.name_of(vm.host) if vm.host else "none"
    return [
        ("VM", Text(shown_line(vm.name), style="bold")),
        ("UUID", vm.uuid),
        ("Power", vm.power_state.value),
        ("Host", host),
        ("vCPUs", str(vm.vcpus)),
        ("Memory", fmt.size(vm.memory)),
        ("IPs", ", ".join(vm.ips) or "none known"),
        ("Disks", disks if vm.disks else "none" if vm.devices_known else "reading…"),
        ("Networks", nics if vm.nics else "none" if vm.devices_known else "reading…"),
        ("Allowed ops", ", ".join(sorted(vm.allowed_operations)) or "none"),
        ("Current ops", ", ".join(vm.current_operations) or "none"),
        *([("Description", Text(shown_lines(vm.description)))] if vm.description else []),
    ]


def pool_rows(session: PoolSession) -> list[tuple[str, str | Text]]:
    rows: list[tuple[str, str | Text]] = [
        ("Pool", Text(shown_line(session.name), style="bold")),
        ("Backend", session.config.backend),
        ("Connection", session.status_text()),
    ]
    store = session.store
    if store is not None:
        running = sum(1 for vm in store.vms.values() if vm.power_state == PowerState.RUNNING)
        rows += [
            ("Master", store.name_of(store.pool.master) if store.pool.master else "none"),
            ("Hosts", str(len(store.hosts))),
            ("VMs", f"{len(store.vms)} ({running} running)"),
            ("SRs", str(len(store.srs))),
            ("Networks", str(len(store.networks))),
        ]
    return rows


class DetailsPane(VerticalScroll, can_focus=True):
    """Shows one ``Selection``; redraws when a change touches what it shows.

    Focusable so long details (a VM with many disks at 80x24) scroll from the keyboard.
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None):
        super().__init__(id=id, classes=classes)
        self._body = Static("", id="details-body")
        self._session: PoolSession | None = None
        self._selection: Selection | None = None

    def compose(self) -> ComposeResult:
        yield self._body

    @property
    def selection(self) -> Selection | None:
        return self._selection

    def show(self, session: PoolSession | None, selection: Selection | None) -> None:
        self._session = session
        self._selection = selection
        self.redraw()

    def touches(self, pool: str, changes: list[Change]) -> bool:
        sel = self._selection
        if sel is None or sel.pool != pool:
            return False
        if sel.kind in ("pool", "storage", "networks", "sr", "network", "host"):
            # summaries and counts depend on many objects; changes are batched, so this is cheap
            return True
        return any(c.ref == sel.ref for c in changes)

    def redraw(self) -> None:
        self._body.update(self._render_selection())

    def _render_selection(self) -> RenderableType:
        session, sel = self._session, self._selection
        if session is None or sel is None:
            return Text("Nothing selected", style="dim")
        store = session.store
        if sel.kind == "pool" or store is None:
            return _grid(pool_rows(session))
        if sel.kind == "storage":
            return _listing(
                "Storage repositories",
                [(sr.name, f"{sr.type}, {fmt.size(sr.used)} of {fmt.size(sr.size)}") for sr in store.srs.values()],
            )
        if sel.kind == "networks":
            return _listing("Networks", [(net.name, net.bridge) for net in store.networks.values()])
        rows = _object_rows(store, sel.kind, sel.ref)
        if rows is None:
            return Text(f"{sel.kind} {shown(sel.ref)} is gone", style="dim")
        return _grid(rows)


def _listing(title: str, entries: list[tuple[str, str]]) -> Group:
    """A group node's summary: one line per member, by name."""
    lines = [Text(title, style="bold")]
    for name, extra in sorted(entries, key=lambda e: e[0].casefold()):
        lines.append(Text(f"{shown(name)}  {shown(extra)}"))
    return Group(*lines)


def _object_rows(store: InventoryStore, kind: str, ref: str | None) -> list[tuple[str, str | Text]] | None:
    """The rows of one host, SR, network or VM; None when the store no longer has it."""
    if ref is None:
        return None
    if kind == "host":
        host = store.hosts.get(ref)
        return host_rows(host, store) if host is not None else None
    if kind == "sr":
        sr = store.srs.get(ref)
        return sr_rows(sr, store) if sr is not None else None
    if kind == "network":
        net = store.networks.get(ref)
        return network_rows(net, store) if net is not None else None
    if kind == "vm":
        vm = store.vms.get(ref)
        return vm_rows(vm, store) if vm is not None else None
    return None
