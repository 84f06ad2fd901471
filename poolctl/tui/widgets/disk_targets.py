"""The migrate dialog's storage motion rows: one per disk, the SR it goes to on the destination
in view, chosen from the SRs that host sees (a Select: Enter opens the list, Enter picks); a host
of another pool offers that pool's SRs.

The defaults are poolctl.migration.storage's obvious ones; a pick is kept per disk and applies
to every destination that sees the SR picked (the others get their default).
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Label, Select

from poolctl.format import size
from poolctl.migration.cross_pool import Destination, label
from poolctl.migration.storage import default_sr, disk_map, free, sr_choices
from poolctl.model import VM, Disk, StorageRepository
from poolctl.safe_text import shown

DiskMap = tuple[tuple[str, str], ...]
NO_SR = ""  # the value of a disk's list when the host sees no disk SR


class DiskTargets(Vertical):
    DEFAULT_CSS = """
    DiskTargets { height: auto; }
    DiskTargets > Horizontal { height: 1; }
    /* the disk, its size and SR: cut with an ellipsis so the SR list keeps most of the row */
    DiskTargets .disk-label { width: 40%; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    DiskTargets .disk-arrow { width: 2; }
    DiskTargets Select { width: 1fr; }
    """

    class Picked(Message):
        """The user chose another SR for a disk: the maps of the hosts that see it changed."""

    def __init__(
        self,
        vm: VM,
        disks: Sequence[Disk],
        srs: Sequence[StorageRepository],
        destinations: Sequence[Destination],
        *,
        id: str,
    ) -> None:
        super().__init__(id=id)
        self.vm = vm
        self.disks = list(disks)
        self.srs = list(srs)  # the VM's pool's: where the disks are now
        self.destinations = {d.key: d for d in destinations}
        self.picked: dict[str, str] = {}  # device -> SR ref the user chose
        # the destination the rows show (a Destination.key)
        self.host: str | None = destinations[0].key if destinations else None
        self._listed: dict[int, list[str]] = {}  # row -> the SR refs its list offers
        # row -> the value show() gave it: a Changed with another value is the user's pick
        self._shown: dict[int, str] = {}

    def compose(self) -> ComposeResult:
        targets = self.targets(self.host) if self.host is not None else {}
        for i, disk in enumerate(self.disks):
            with Horizontal():
                yield Label(self._disk_label(disk), classes="disk-label", markup=False)
                yield Label("→", classes="disk-arrow")
                options = self._options(self.host, disk)
                self._listed[i] = [v for _, v in options]
                # the default from the start: a first value of the list's own would read as a pick
                value = targets.get(disk.device) or options[0][1]
                self._shown[i] = value
                yield Select(options, value=value, allow_blank=False, id=f"disk-{i}", compact=True)

    def targets(self, host: str) -> dict[str, str | None]:
        """Device -> the SR each disk goes to on ``host``: the user's pick where ``host`` sees
        it, else the obvious one (None: ``host`` sees no disk SR)."""
        choices = self._choices(host)
        refs = {s.ref for s in choices}
        return {
            d.device: self.picked[d.device] if self.picked.get(d.device) in refs else default_sr(d, choices)
            for d in self.disks
        }

    def disk_srs(self, host: str) -> DiskMap:
        """``MigrationOptions.disk_srs`` for a move to ``host``: the disks that change SR."""
        return disk_map(self.vm, {k: v for k, v in self.targets(host).items() if v}) if self.disks else ()

    def show(self, host: str | None) -> None:
        """The rows for ``host``: its SRs to choose from, each disk's target."""
        self.host = host
        if host is None:
            return
        targets = self.targets(host)
        for i, disk in enumerate(self.disks):
            select: Select[str] = self.query_one(f"#disk-{i}", Select)
            options = self._options(host, disk)
            if [v for _, v in options] != self._listed.get(i):
                self._listed[i] = [v for _, v in options]
                select.set_options(options)
            target = targets[disk.device] or NO_SR
            self._shown[i] = target
            if select.value != target:
                select.value = target

    @on(Select.Changed)
    def _changed(self, event: Select.Changed) -> None:
        event.stop()
        index = int((event.select.id or "disk-0").removeprefix("disk-"))
        if event.value in (Select.NULL, NO_SR, self._shown.get(index)) or index >= len(self.disks):
            return  # set by show(), not a pick
        self.picked[self.disks[index].device] = str(event.value)
        # the rows as they stand now: a show() that ran before this message may have reset this one
        self.show(self.host)
        self.post_message(self.Picked())

    def _disk_label(self, disk: Disk) -> str:
        sr = next((s for s in self.srs if s.ref == disk.sr), None)
        return f"{shown(disk.device)} {size(disk.size)} from {shown(sr.name) if sr is not None else '?'}"

    def _choices(self, host: str | None) -> list[StorageRepository]:
        dest = self.destinations.get(host) if host is not None else None
        return sr_choices(dest.srs, dest.host.ref) if dest is not None else []

    def _options(self, host: str | None, disk: Disk) -> list[tuple[Text, str]]:
        dest = self.destinations.get(host) if host is not None else None
        options = [(_prompt(sr, disk, dest.pool if dest else None), sr.ref) for sr in self._choices(host)]
        return options or [(Text(f"no SR {shown(dest.label if dest else '')} sees"), NO_SR)]


def _prompt(sr: StorageRepository, disk: Disk, pool: str | None) -> Text:
    """An SR to choose; another pool's named ``POOL/SR``, as the CLI's pre-check names it."""
    if sr.ref == disk.sr:
        return Text(f"stays: {shown(sr.name)} · {size(free(sr))} free")
    name = shown(label(pool, sr.name))
    return Text(f"{name} · {'shared' if sr.shared else 'local'} · {size(free(sr))} free")
