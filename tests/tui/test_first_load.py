"""The app takes over each pool's first load (poolctl.loading) instead of starting it again.

The simulator is served here rather than by the ``lab`` fixture: these tests count the calls it
served (``server.stats``), which is how "loaded once" shows from the outside.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from poolctl import loading
from poolctl.backends.base import ConnectionLost
from poolctl.model import ConnectionStatus
from poolctl.sim.xapi import Simulator
from poolctl.tui.app import create_app
from tests.support.fault_proxy import FaultProxy
from tests.support.tui import loaded, screen_text, wait_for
from tests.support.xen import config
from tests.support.xen import lab as serve_lab

pytestmark = pytest.mark.timeout(60)

LAB_VMS = len(Simulator.from_scenario("lab").scenario.vms)


@pytest.fixture
def served() -> Iterator[tuple[Simulator, object]]:
    with serve_lab() as (sim, server):
        yield sim, server
    gc.unfreeze()  # a first load that the app never took over froze its records too


def logins(server) -> int:
    return server.stats.snapshot()["session.login_with_password"]


async def events_running(pilot, server) -> None:
    # the event watcher logs in on its own session; wait for it so the login count is final
    await wait_for(pilot, lambda: server.stats.snapshot()["event.from"] > 0, "the event watcher to start")


async def test_the_app_shows_the_pool_its_first_load_read_without_loading_again(served):
    sim, server = served
    cfg = config(server.url)
    first_loads = loading.start([cfg])
    app = create_app([cfg], first_loads=first_loads)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot, "lab")
        assert app.main_screen.vm_list.row_count == LAB_VMS
        assert "web-01" in screen_text(app)
        backend, inventory = first_loads["lab"].result()
        assert app.sessions["lab"].backend is backend
        assert len(app.sessions["lab"].store.vms) == len(inventory.vms) == LAB_VMS
        await events_running(pilot, server)
        calls = server.stats.snapshot()
        assert calls["VM.get_all_records"] == 1, "the app read the pool again"
        # one for the load, one for the event watcher's own session: no second load's login
        assert calls["session.login_with_password"] == 2, calls
        assert len(sim.sessions) == 2
    # quitting closed the taken-over backend: its pooled session logged out (backends close in
    # the background as the app exits, so the event loop's logout may still be on its way)
    assert server.stats.snapshot()["session.logout"] >= 1


async def test_a_first_load_refused_by_the_pool_shows_it_failed_with_the_message(served):
    sim, server = served
    wrong = "not-The-Password-77"
    cfg = config(server.url, password=wrong)
    app = create_app([cfg], first_loads=loading.start([cfg]))
    async with app.run_test(size=(120, 40)) as pilot:
        session = app.sessions["lab"]
        await wait_for(pilot, lambda: session.state.status == ConnectionStatus.FAILED, "the pool to fail")
        await pilot.pause()
        assert "refused the credentials of user 'root'" in session.state.message
        assert urlsplit(server.url).netloc in session.state.message
        text = screen_text(app)
        assert "lab failed:" in text and wrong not in text
        assert logins(server) == 1, "a refused first load was tried again"
        assert len(sim.sessions) == 0


async def test_a_first_load_that_lost_the_connection_is_retried_by_the_app(served):
    sim, server = served
    parts = urlsplit(server.url)
    with FaultProxy((parts.hostname, parts.port), http=False, stalled=True) as gate:  # holds the first load until told
        cfg = config(gate.url)
        first_loads = loading.start([cfg])
        gate.wait_accepted(1)
        app = create_app([cfg], first_loads=first_loads)
        async with app.run_test(size=(120, 40)) as pilot:
            session = app.sessions["lab"]
            gate.refuse(reset=False)  # the server goes away mid-login
            await wait_for(pilot, lambda: session.state.status == ConnectionStatus.LOST, "the pool to be lost")
            assert gate.address in session.state.message and session.state.retry_in_s is not None
            assert "lab lost — retrying in" in screen_text(app)
            gate.admit()  # and comes back: the app's own retry loads it
            gate.unstall()
            await loaded(pilot, "lab")
            assert app.main_screen.vm_list.row_count == LAB_VMS
            with pytest.raises(ConnectionLost):
                first_loads["lab"].result()
            assert session.backend is not None
            await events_running(pilot, server)
            calls = server.stats.snapshot()
            assert calls["VM.get_all_records"] == 1
            assert calls["session.login_with_password"] == 2, calls  # the retry's and the watcher's
