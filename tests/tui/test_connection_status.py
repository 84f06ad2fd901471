"""Why a pool (or one of its hosts) is not connected, on screen from start-up on, and the
retry key: KVM pools through a real sshd (tests/support/sshd.py), a Xen pool through a port
nobody listens on."""

from __future__ import annotations

import socket
import time

import pytest

from poolctl.config import pool_config
from poolctl.model import ConnectionStatus
from poolctl.tui.app import create_app
from tests.support.fault_proxy import FaultProxy
from tests.support.sshd import sshd, wait_no_ssh_children
from tests.support.tui import screen_text, wait_for

__all__ = ["sshd"]
pytestmark = pytest.mark.timeout(90)


def kvm_pool(*uris: str, **settings: object):
    return pool_config({"name": "rack", "backend": "kvm", "uris": list(uris), **settings})


def details_text(app) -> str:
    return screen_text(app).split("Details", 1)[1]


async def test_an_untrusted_host_key_is_shown_at_start_up_and_retried_only_by_the_key(sshd):
    sshd.forget()
    app = create_app([kvm_pool(sshd.uri())])
    async with app.run_test(size=(160, 45)) as pilot:
        session = app.sessions["rack"]
        await wait_for(pilot, lambda: session.state.status == ConnectionStatus.FAILED, "the pool to fail")
        await wait_for(pilot, lambda: not session.connecting, "the connect worker to stop")
        text = screen_text(app)
        assert "rack failed: host 127.0.0.1:" in text  # the pool's row, start-up included
        assert "not known yet" in details_text(app) and "ssh-keyscan" in details_text(app)
        assert "retrying" not in text  # a key to trust is the user's call, not a loop's
        logins = sshd.log.read_text().count("Connection from 127.0.0.1")

        sshd.trust()
        await pilot.press("R")  # pool.retry
        await wait_for(pilot, lambda: session.connected and app.main_screen.vm_list.row_count == 1, "the retry")
        assert sshd.log.read_text().count("Connection from 127.0.0.1") > logins
        assert "rack connected" in screen_text(app)
    wait_no_ssh_children()


async def test_a_refused_login_in_a_two_host_pool_keeps_its_reason_beside_the_good_host(sshd):
    bad = sshd.uri(user="nosuchuser")
    app = create_app([kvm_pool(sshd.uri(), bad)])
    async with app.run_test(size=(200, 45)) as pilot:
        session = app.sessions["rack"]
        await wait_for(pilot, lambda: session.connected, "the good host")
        await wait_for(pilot, lambda: session.host_trouble, "the refused host's state")
        await pilot.pause(0.3)
        (trouble, retry_at), *_ = session.host_trouble.values()
        assert trouble.status == ConnectionStatus.FAILED and retry_at is None  # no automatic retry
        text = screen_text(app)
        assert "rack connected; failed: host 127.0.0.1:" in text and "refused the login" in details_text(app)
        assert app.main_screen.vm_list.row_count == 1  # the good host's VM is usable meanwhile
    wait_no_ssh_children()


async def test_a_host_that_never_answers_does_not_hold_back_the_others_first_paint(sshd):
    with FaultProxy(("127.0.0.1", 9), http=False, stalled=True) as gate:  # accepts and never answers
        held = sshd.uri().replace(f":{sshd.port}/", f":{gate.address.split(':')[1]}/")
        app = create_app([kvm_pool(held, sshd.uri(), connect_timeout_s=3)])
        async with app.run_test(size=(200, 45)) as pilot:
            session = app.sessions["rack"]
            await wait_for(pilot, lambda: app.main_screen.vm_list.row_count == 1, "the answering host's VMs")
            backend = session.backend
            assert backend is not None
            held_host = next(hc for hc in backend.hosts if hc.uri == held)
            # the order that matters: painted while the held host's open was still under way
            assert gate.accepted >= 1 and held_host.opening and not held_host.live
            await wait_for(
                pilot, lambda: session.retry_at is not None, "the held host to be shown unreachable", timeout=20
            )
            await pilot.pause(1.2)  # one countdown tick at least
            text = screen_text(app)
            tree_part = next(line for line in text.splitlines() if "rack lost" in line or "rack connected;" in line)
            assert "lost — retrying in" in tree_part and "did not answer within 3 s" in details_text(app)
            left = round(session.retry_at - time.monotonic())
            details = details_text(app)
            # the tree and the details count down together
            assert any(f"retrying in {n}s" in details and f"retrying in {n}s" in tree_part for n in (left, left + 1))
    wait_no_ssh_children()


async def test_sshd_killed_under_the_tui_is_shown_lost_with_words(sshd):
    app = create_app([kvm_pool(sshd.uri())])
    async with app.run_test(size=(160, 45)) as pilot:
        session = app.sessions["rack"]
        await wait_for(pilot, lambda: session.connected and app.main_screen.vm_list.row_count == 1, "the pool")
        sshd.stop()
        await wait_for(pilot, lambda: session.state.status == ConnectionStatus.LOST, "the pool to be lost", 30)
        await pilot.pause()
        text = screen_text(app)
        assert "reason" not in session.state.message
        assert "rack lost — retrying in" in text or "rack connected; lost — retrying in" in text
        assert "127.0.0.1" in details_text(app)
    wait_no_ssh_children()


async def test_a_xen_pools_failed_first_connect_shows_why_and_the_key_retries_at_once(lab):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pool = lab.pool(name="gone").model_copy(update={"url": f"http://127.0.0.1:{port}"})
    app = create_app([pool])
    async with app.run_test(size=(160, 45)) as pilot:
        session = app.sessions["gone"]
        await wait_for(pilot, lambda: session.state.status == ConnectionStatus.LOST, "the pool to be lost")
        await pilot.pause()
        text = screen_text(app)
        assert "gone lost — retrying in" in text and f"127.0.0.1:{port}" in text  # the reason, not only "lost"
        assert f"127.0.0.1:{port}" in details_text(app)
        first = session.state
        await pilot.press("R")
        await wait_for(pilot, lambda: session.state is not first, "the retry's attempt", timeout=1.5)
