"""Filter-as-you-type narrows the current rows when the text grows: same rows as a fresh filter."""

from __future__ import annotations

import pytest

from poolctl.tui.app import create_app
from poolctl.tui.widgets.vm_list import VMList, in_scope, sort_key
from tests.support.tui import loaded, wait_for

pytestmark = pytest.mark.timeout(60)


def fresh(vm_list: VMList, text: str) -> list[str]:
    """The rows a from-scratch filter gives: every VM in scope whose name, IPs, host or state
    holds the text, sorted by name."""
    store, text = vm_list._store, text.strip().casefold()

    def hay(vm) -> str:
        host = store.hosts.get(vm.host) if vm.host else None
        return "\n".join((vm.name, *vm.ips, host.name if host else "", vm.power_state.value)).casefold()

    vms = [vm for vm in store.vms.values() if in_scope(vm, vm_list.scope) and text in hay(vm)]
    return [sort_key(vm)[2] for vm in sorted(vms, key=sort_key)]


async def test_growing_and_shrinking_the_filter_gives_the_rows_of_a_fresh_filter(lab):
    app = create_app([lab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        vm_list = app.main_screen.vm_list
        assert vm_list.row_count > 3
        name = app.sessions["lab"].store.vms[vm_list.refs[1]].name
        steps = [name[:i] for i in range(1, len(name) + 1)]  # typing a real name, key by key
        steps += steps[-2::-1] + ["", "r", "ru", "run", "runx", "run", "  RUN ", "x", "xcp", "c", "h"]
        seen_narrower = False
        for text in steps:
            before = vm_list.row_count
            vm_list.set_filter(text)
            assert vm_list.refs == fresh(vm_list, text), f"filter {text!r}"
            assert vm_list.filter_text == text.strip().casefold()
            seen_narrower |= 0 < vm_list.row_count < before
        assert seen_narrower  # the steps really exercised narrowing
        vm_list.set_filter(name[:2])
        await pilot.pause()
        assert vm_list.cursor_ref in vm_list.refs  # the cursor stays on a listed row


async def test_narrowing_after_a_live_change_still_matches_a_fresh_filter(lab):
    app = create_app([lab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        vm_list = app.main_screen.vm_list
        vm_list.set_filter("web")
        store = app.sessions["lab"].store
        victim = next(v for v in store.vms.values() if "web" not in v.name.casefold())
        lab.sim.db.set("VM", lab.sim.vm_ref(victim.name), name_label="web-renamed")
        await wait_for(pilot, lambda: victim.ref in vm_list.refs, "the renamed VM to join the filtered rows")
        vm_list.set_filter("web-r")
        assert vm_list.refs == fresh(vm_list, "web-r") == [victim.ref]
