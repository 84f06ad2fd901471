"""The VM list: a virtual table drawn with Textual's line API.

Only visible rows are rendered (``render_line``), so 10,000 VMs cost what 40 do. Rows
are refs kept sorted by ``(casefolded name, name, ref)``; a change moves or redraws one
row instead of rebuilding the list. VM data is looked up in the store at draw time, so
a modified VM whose sort key and visibility did not change only needs a redraw.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable

from rich.cells import set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from poolctl import format as fmt
from poolctl.inventory import InventoryStore
from poolctl.model import VM, Change
from poolctl.safe_text import shown, shown_line
from poolctl.tui.messages import Selection
from poolctl.tui.widgets.cells import ellipsize

SortKey = tuple[str, str, str]  # (casefolded name, name, ref): stable, unique
Column = tuple[str, int, bool]  # (title, width, right-aligned)

MARK = "✓ "  # before a marked VM's name: a mark in text, not a colour

# Above this many VM changes in one batch a full rebuild (one sort) beats row-by-row moves.
REBUILD_THRESHOLD = 256


def sort_key(vm: VM) -> SortKey:
    folded = vm.name.casefold()
    # a name that is its own casefold is kept once, not twice, per row
    return (vm.name if folded == vm.name else folded, vm.name, vm.ref)


def in_scope(vm: VM, scope: Selection) -> bool:
    if scope.kind == "host":
        return vm.host == scope.ref
    if scope.kind == "sr":
        return any(d.sr == scope.ref for d in vm.disks)
    if scope.kind == "network":
        return scope.ref in vm.networks
    return True  # the pool, or its "Storage"/"Networks" group nodes: every VM


class VMList(ScrollView, can_focus=True):
    """Virtualised, sorted, live list of the VMs in a scope, optionally filtered."""

    COMPONENT_CLASSES = {
        "vm-list--header",
        "vm-list--cursor",
        "vm-list--cursor-blurred",
        "vm-list--empty",
        "vm-list--running",
        "vm-list--halted",
        "vm-list--other",
    }

    BINDINGS = [
        Binding("up", "cursor_up", "Up", show=False, tooltip="VM list: previous VM", id="list.up"),
        Binding("down", "cursor_down", "Down", show=False, tooltip="VM list: next VM", id="list.down"),
        Binding("pageup", "page_up", "Page up", show=False, tooltip="VM list: a page up", id="list.page_up"),
        Binding("pagedown", "page_down", "Page down", show=False, tooltip="VM list: a page down", id="list.page_down"),
        Binding("home", "first", "First VM", show=False, tooltip="VM list: first VM", id="list.first"),
        Binding("end", "last", "Last VM", show=False, tooltip="VM list: last VM", id="list.last"),
        Binding(
            "space",
            "toggle_mark",
            "Mark",
            show=False,
            tooltip="VM list: mark or unmark the VM (m then moves every marked VM to one host)",
            id="list.mark",
        ),
    ]

    class Highlighted(Message):
        """The cursor moved onto another VM (``ref`` None: the list is empty)."""

        def __init__(self, vm_list: VMList, pool: str | None, ref: str | None) -> None:
            super().__init__()
            self.vm_list = vm_list
            self.pool = pool
            self.ref = ref

        @property
        def control(self) -> VMList:
            return self.vm_list

    class MarksChanged(Message):
        """VMs were marked or unmarked (``count``: how many are marked now)."""

        def __init__(self, vm_list: VMList, count: int) -> None:
            super().__init__()
            self.vm_list = vm_list
            self.count = count

        @property
        def control(self) -> VMList:
            return self.vm_list

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None):
        super().__init__(name=name, id=id, classes=classes)
        self._store: InventoryStore | None = None
        self._scope: Selection | None = None
        self._filter = ""
        self._keys: list[SortKey] = []
        self._key_of: dict[str, SortKey] = {}
        self._cursor = 0
        self._cursor_ref: str | None = None
        self._empty_text = ""
        self._hay: dict[str, tuple[VM, str]] = {}
        self._marks: set[str] = set()  # refs of the shown pool's marked VMs

    # --- what is shown -------------------------------------------------------------------

    @property
    def scope(self) -> Selection | None:
        return self._scope

    @property
    def filter_text(self) -> str:
        return self._filter

    @property
    def row_count(self) -> int:
        return len(self._keys)

    @property
    def refs(self) -> list[str]:
        """Refs in display order (a copy; for tests and callers that need the whole list)."""
        return [k[2] for k in self._keys]

    @property
    def cursor_index(self) -> int:
        return self._cursor

    @property
    def cursor_ref(self) -> str | None:
        return self._cursor_ref

    @property
    def cursor_vm(self) -> VM | None:
        if self._store is None or self._cursor_ref is None:
            return None
        return self._store.vms.get(self._cursor_ref)

    @property
    def marked(self) -> list[VM]:
        """The marked VMs that still exist, by name (marks outlive a change of scope or filter)."""
        if self._store is None:
            return []
        vms = [self._store.vms[r] for r in self._marks if r in self._store.vms]
        return sorted(vms, key=sort_key)

    def clear_marks(self) -> None:
        if self._marks:
            self._marks.clear()
            self.refresh()
            self.post_message(self.MarksChanged(self, 0))

    def action_toggle_mark(self) -> None:
        ref = self._cursor_ref
        if ref is None:
            return
        if ref in self._marks:
            self._marks.discard(ref)
        else:
            self._marks.add(ref)
        self.refresh_line(self._cursor + 1)
        self.post_message(self.MarksChanged(self, len(self._marks)))
        self._move_cursor(self._cursor + 1)  # space, space, space marks a run of VMs

    def show(self, store: InventoryStore | None, scope: Selection | None, *, empty_text: str = "") -> None:
        """Show ``scope`` of ``store`` (None: nothing, with ``empty_text`` as the reason)."""
        same_pool = self._scope is not None and scope is not None and self._scope.pool == scope.pool
        if store is not self._store:
            self._hay.clear()
            if self._marks:
                # another pool (or a reconnect's fresh store): marks are of one pool's VMs
                self._marks.clear()
                self.post_message(self.MarksChanged(self, 0))
        self._store = store
        self._scope = scope
        self._empty_text = empty_text
        self._rebuild(keep_ref=self._cursor_ref if same_pool else None)

    def set_filter(self, text: str) -> None:
        text = text.strip().casefold()
        if text == self._filter:
            return
        narrower = self._filter in text  # every row the new text matches is listed already
        self._filter = text
        if narrower and self._narrow():
            self._after_rows_changed(keep_ref=self._cursor_ref)
        else:
            self._rebuild(keep_ref=self._cursor_ref)

    def apply(self, changes: Iterable[Change]) -> None:
        """Bring the rows up to date with changes already applied to the store."""
        if self._store is None or self._scope is None:
            return
        vm_changes = []
        hosts_changed = False
        for c in changes:
            if c.object_kind == "vm":
                vm_changes.append(c)
                if c.ref in self._marks and c.ref not in self._store.vms:
                    self._marks.discard(c.ref)
                    self.post_message(self.MarksChanged(self, len(self._marks)))
            elif c.object_kind == "host":
                hosts_changed = True
        if hosts_changed:
            self._hay.clear()  # host names are part of every haystack
        if hosts_changed and self._filter:
            # Host names take part in the filter: re-filter everything once.
            self._rebuild(keep_ref=self._cursor_ref)
            return
        if len(vm_changes) > REBUILD_THRESHOLD:
            self._rebuild(keep_ref=self._cursor_ref)
            return
        structural = False
        redraw = hosts_changed
        top = int(self.scroll_offset.y)
        bottom = top + self.size.height
        for c in vm_changes:
            vm = self._store.vms.get(c.ref)
            new_key = sort_key(vm) if vm is not None and self._matches(vm) else None
            old_key = self._key_of.get(c.ref)
            if new_key == old_key:
                if new_key is not None and not redraw:
                    i = bisect_left(self._keys, new_key)
                    redraw = top <= i <= bottom
                continue
            structural = True
            if old_key is not None:
                del self._keys[bisect_left(self._keys, old_key)]
                del self._key_of[c.ref]
            if new_key is not None:
                insort(self._keys, new_key)
                self._key_of[c.ref] = new_key
        if structural:
            self._after_rows_changed(keep_ref=self._cursor_ref)
        elif redraw:
            self.refresh()

    # --- rebuilding ----------------------------------------------------------------------

    def _matches(self, vm: VM) -> bool:
        scope = self._scope
        if scope is None or not in_scope(vm, scope):
            return False
        return not self._filter or self._filter in self._haystack(vm)

    def _haystack(self, vm: VM) -> str:
        """Name, IPs, host name and state, casefolded; cached per VM object (they are
        immutable: a change brings a new object), so each keystroke is one pass of ``in``."""
        cached = self._hay.get(vm.ref)
        if cached is not None and cached[0] is vm:
            return cached[1]
        host = self._store.hosts.get(vm.host) if (self._store and vm.host) else None
        hay = "\n".join((vm.name, *vm.ips, host.name if host else "", vm.power_state.value)).casefold()
        self._hay[vm.ref] = (vm, hay)
        return hay

    def _rebuild(self, keep_ref: str | None) -> None:
        if self._store is None or self._scope is None:
            self._keys = []
        else:
            self._keys = sorted(sort_key(vm) for vm in self._store.vms.values() if self._matches(vm))
        self._key_of = {k[2]: k for k in self._keys}
        self._after_rows_changed(keep_ref)

    def _narrow(self) -> bool:
        """Keep only the current rows that still match: a keystroke that extends the filter
        scans the matches so far, not every VM, and needs no sort (a subsequence of sorted
        rows is sorted). False, rows untouched, when the rows are not the store's current
        VMs (a change not yet applied): the caller rebuilds then."""
        if self._store is None or self._scope is None:
            return False
        vms, hay, text = self._store.vms, self._hay, self._filter
        keys = []
        for key in self._keys:
            ref = key[2]
            vm = vms.get(ref)
            if vm is None:
                return False
            cached = hay.get(ref)  # _haystack inlined: this loop runs over every row per key
            if text in (cached[1] if cached is not None and cached[0] is vm else self._haystack(vm)):
                keys.append(key)
        self._keys = keys
        self._key_of = {k[2]: k for k in keys}
        return True

    def _after_rows_changed(self, keep_ref: str | None) -> None:
        self._set_virtual_height(len(self._keys) + 1)
        if keep_ref is not None and keep_ref in self._key_of:
            self._cursor = bisect_left(self._keys, self._key_of[keep_ref])
        self._move_cursor(self._cursor, force_post=False)
        self.refresh()

    def _set_virtual_height(self, height: int) -> None:
        # Assigning ``virtual_size`` lays out the whole screen (~30 ms at 120x40), on every
        # filter keystroke. The vertical scrollbar is always shown (CSS), so the geometry
        # cannot change: update the scrollbar alone and repaint this widget.
        size = Size(0, height)
        if size == self.virtual_size:
            return
        if not self.is_mounted or not self.show_vertical_scrollbar:
            self.virtual_size = size
            return
        self.set_reactive(VMList.virtual_size, size)
        self._scroll_update(size)
        self.refresh()

    # --- cursor --------------------------------------------------------------------------

    @property
    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def _move_cursor(self, index: int, *, force_post: bool = False) -> None:
        n = len(self._keys)
        old = self._cursor
        self._cursor = max(0, min(index, n - 1)) if n else 0
        ref = self._keys[self._cursor][2] if n else None
        if ref != self._cursor_ref or force_post:
            self._cursor_ref = ref
            self.post_message(self.Highlighted(self, self._scope.pool if self._scope else None, ref))
        top = int(self.scroll_offset.y)
        if top <= self._cursor < top + self._page:
            # No scrolling: only the old and the new cursor rows change. Repainting just those
            # two lines keeps a key's output to the terminal at two rows, not the whole list.
            self.refresh_line(old + 1)  # virtual line 0 is the header
            self.refresh_line(self._cursor + 1)
        else:
            self._scroll_cursor_into_view()
            self.refresh()

    def _scroll_cursor_into_view(self) -> None:
        top = int(self.scroll_offset.y)
        rows = self._page
        if self._cursor < top:
            self.scroll_to(y=self._cursor, animate=False, immediate=True)
        elif self._cursor >= top + rows:
            self.scroll_to(y=self._cursor - rows + 1, animate=False, immediate=True)

    def move_to(self, ref: str) -> bool:
        """Put the cursor on ``ref`` if it is listed."""
        key = self._key_of.get(ref)
        if key is None:
            return False
        self._move_cursor(bisect_left(self._keys, key))
        return True

    def action_cursor_up(self) -> None:
        self._move_cursor(self._cursor - 1)

    def action_cursor_down(self) -> None:
        self._move_cursor(self._cursor + 1)

    def action_page_up(self) -> None:
        self._move_cursor(self._cursor - self._page)

    def action_page_down(self) -> None:
        self._move_cursor(self._cursor + self._page)

    def action_first(self) -> None:
        self._move_cursor(0)

    def action_last(self) -> None:
        self._move_cursor(len(self._keys) - 1)

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y == 0:
            return
        index = int(self.scroll_offset.y) + offset.y - 1
        if 0 <= index < len(self._keys):
            self._move_cursor(index)

    def on_resize(self) -> None:
        self._scroll_cursor_into_view()

    # --- drawing -------------------------------------------------------------------------

    def _columns(self, width: int) -> list[Column]:
        """The columns fitted to ``width``."""
        fixed: list[Column] = [("STATE", 9, False), ("vCPU", 4, True), ("MEMORY", 9, True)]
        ip: Column = ("IP", 15, False)
        gaps = len(fixed)  # one space before every column but the first (the name)
        rest = width - sum(w for _, w, _ in fixed) - gaps - ip[1] - 1
        with_ip = rest >= 22
        if not with_ip:
            rest = width - sum(w for _, w, _ in fixed) - gaps
        name_w = max(8, rest * 3 // 5)
        host_w = max(4, rest - name_w - 1)
        cols: list[Column] = [("NAME", name_w, False), fixed[0], ("HOST", host_w, False), fixed[1], fixed[2]]
        if with_ip:
            cols.append(ip)
        return cols

    def _cells(self, values: list[str], cols: list[Column]) -> list[str]:
        parts = []
        for value, (_, w, right) in zip(values, cols):
            value = ellipsize(shown(value), w)  # a hypervisor's string: escaped before it is fitted
            parts.append(value.rjust(w) if right else set_cell_size(value, w))
        return parts

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        cols = self._columns(width)
        if y == 0:
            text = " ".join(self._cells([c[0] for c in cols], cols))
            style = base + self.get_component_rich_style("vm-list--header")
            return Strip([Segment(text, style)]).adjust_cell_length(width, style)
        index = int(self.scroll_offset.y) + y - 1
        if index >= len(self._keys) or self._store is None:
            if index == 0 and not self._keys:
                style = base + self.get_component_rich_style("vm-list--empty")
                return Strip([Segment(" " + self._empty_message(), style)]).adjust_cell_length(width, base)
            return Strip.blank(width, base)
        vm = self._store.vms[self._keys[index][2]]
        return self._row_strip(vm, cols, width, base, cursor=index == self._cursor)

    def _row_strip(self, vm: VM, cols: list[Column], width: int, base: Style, *, cursor: bool) -> Strip:
        host = self._store.hosts.get(vm.host) if (self._store and vm.host) else None
        values = [
            f"{MARK}{vm.name}" if vm.ref in self._marks else vm.name,
            vm.power_state.value,
            host.name if host else (vm.host or ""),
            str(vm.vcpus),
            fmt.size(vm.memory) if vm.memory else "",
            vm.ips[0] if vm.ips else "",
        ]
        cells = self._cells(values, cols)
        state = vm.power_state.value
        state_class = f"vm-list--{state}" if state in ("running", "halted") else "vm-list--other"
        row_style = base
        if cursor:
            cls = "vm-list--cursor" if self.has_focus else "vm-list--cursor-blurred"
            row_style = base + self.get_component_rich_style(cls)
        # The state column gets its own colour; the text says the same thing without it.
        state_style = row_style + self.get_component_rich_style(state_class, partial=True)
        if cursor:
            state_style = row_style
        segments = [
            Segment(cells[0] + " ", row_style),
            Segment(cells[1], state_style),
            Segment(" " + " ".join(cells[2:]), row_style),
        ]
        return Strip(segments).adjust_cell_length(width, row_style)

    def _empty_message(self) -> str:
        if self._empty_text:
            return shown_line(self._empty_text)
        if self._filter:
            return f"No VMs match “{shown(self._filter)}”"
        return "No VMs here"
