"""Hostile names from the hypervisor in the TUI: drawn escaped, never obeyed, never markup.

Set through the simulator's JSON-RPC (as any client of the pool could); the screen is read as
the text a user sees."""

from __future__ import annotations

import pytest

from poolctl.tui.app import create_app
from tests.support.jsonrpc import JsonRpc
from tests.support.tui import loaded, screen_text, wait_for

pytestmark = pytest.mark.timeout(60)

RAW = ("\x1b", "\x07", "\u200b", "\u202e")


async def test_vm_list_details_and_tree_show_the_escaped_form(lab):
    rpc = JsonRpc(lab.url, "root", "demo")
    rpc.rename_vm("web-01", "\x1b]0;pwned\x07osc-title")
    rpc.rename_vm("web-02", "web\u200b-01")
    rpc.rename_vm("db-01", "[bold red]boom[/]")
    (host,) = rpc.api("host.get_by_name_label", "xcp-lab-1")
    rpc.api("host.set_name_label", host, "\x1b[2Jlab-1")
    app = create_app([lab.pool()])
    async with app.run_test(size=(140, 45)) as pilot:
        await loaded(pilot)
        text = screen_text(app)
        assert "\\x1b]0;pwned\\x07osc-title" in text
        assert "web<U+200B>-01" in text
        assert "[bold red]boom[/]" in text  # markup shown as typed, not interpreted
        assert "\\x1b[2Jlab-1" in text  # the pool tree's host
        assert not any(c in text for c in RAW)
        # the selected VM's details and the list's title name it escaped too
        vm_list = app.main_screen.vm_list
        store = app.sessions["lab"].store
        target = next(i for i, r in enumerate(vm_list.refs) if store.vms[r].name.startswith("\x1b]0"))
        vm_list.focus()
        for _ in range(target):
            await pilot.press("down")
        await wait_for(pilot, lambda: "UUID" in screen_text(app), "the VM's details")
        details = screen_text(app)
        assert details.count("\\x1b]0;pwned\\x07osc-title") >= 2, details
        assert not any(c in details for c in RAW)


async def test_a_toast_quoting_a_hostile_name_is_escaped(lab):
    rpc = JsonRpc(lab.url, "root", "demo")
    rpc.rename_vm("test-01", "test-01\x1b]0;pwned\x07")  # halted: m says why it cannot move
    app = create_app([lab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        vm_list = app.main_screen.vm_list
        await pilot.press("slash", *"test-01", "enter")
        await wait_for(pilot, lambda: vm_list.cursor_vm is not None, "the cursor on test-01")
        await pilot.press("m")
        note = next(n for n in app._notifications if n.title.startswith("Cannot migrate"))
        assert note.title == "Cannot migrate test-01\\x1b]0;pwned\\x07"
        assert "test-01\\x1b]0;pwned\\x07 is halted" in note.message
        assert not any(c in note.title + note.message for c in RAW)


async def test_a_server_fault_with_escapes_is_drawn_escaped(lab):
    from tests.support import fault_proxy as fp

    with fp.FaultProxy(lab.url) as proxy:
        # JSON-RPC carries ESC and BEL: the bulk read's error is how they reach poolctl
        proxy.on("VM.get_all_records", fp.replace(fp.jsonrpc_failure("INTERNAL_ERROR", "\x1b]0;pwned\x07 \x1b[2J")))
        pool = lab.pool()
        app = create_app([pool.model_copy(update={"url": proxy.url})])
        async with app.run_test(size=(140, 40)) as pilot:
            await wait_for(
                pilot,
                lambda: any("INTERNAL_ERROR" in n.message for n in app._notifications),
                "the connection failure toast",
            )
            note = next(n for n in app._notifications if "INTERNAL_ERROR" in n.message)
            assert "\\x1b]0;pwned\\x07 \\x1b[2J" in note.message
            text = screen_text(app)
            assert "\\x1b]0;pwned" in text  # the pool's status in the tree
            assert not any(c in text + note.message for c in RAW)
