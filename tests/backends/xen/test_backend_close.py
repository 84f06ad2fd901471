"""Closing the Xen backend leaves no session behind on the pool, not even the event loop's."""

from __future__ import annotations

import pytest

from poolctl.backends.base import BackendError
from poolctl.backends.xen import XenBackend
from poolctl.model import ConnectionStatus
from tests.support.xen import config, wait_state, watching

pytestmark = pytest.mark.timeout(60)


def _watching_backend(server) -> XenBackend:
    backend = XenBackend(config(server.url))
    backend.connect()
    backend.inventory()
    wait_state(watching(backend), ConnectionStatus.CONNECTED)
    return backend


def test_close_while_watching_logs_out_every_session_including_the_aborted_long_poll(lab):
    sim, server = lab
    backend = _watching_backend(server)
    assert len(sim.sessions) == 2  # the pooled session and the event loop's
    backend.close()
    assert len(sim.sessions) == 0
    assert server.stats.snapshot()["session.logout"] == 2


def test_close_with_the_pool_gone_returns_promptly(lab):
    _sim, server = lab
    backend = _watching_backend(server)
    server.close()
    backend.close()  # the logouts find nobody: no error, no hang (the timeout above bounds it)
    with pytest.raises(BackendError, match="connection is closed"):
        backend.inventory()


@pytest.fixture
def lab():
    from tests.support.xen import lab as serve_lab

    with serve_lab() as served:
        yield served
