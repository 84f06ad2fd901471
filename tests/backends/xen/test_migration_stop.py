"""Stop following a Xen migration (poolctl quits): updates() ends, its session is logged out,
and the move itself carries on in XAPI."""

from __future__ import annotations

import time

import pytest

from poolctl.model import PowerState
from tests.support.xen import by_name, connected, lab, migrate_until

pytestmark = pytest.mark.timeout(60)


def test_stop_following_ends_updates_and_logs_out_while_the_move_goes_on():
    with lab(migration_seconds=3.0) as (sim, server), connected(server.url) as backend:
        inv = backend.inventory()
        vm, lab2 = by_name(inv, "vm", "web-01"), by_name(inv, "host", "xcp-lab-2")
        handle, rest = migrate_until(backend, vm, lab2, lambda p: (p.fraction or 0) > 0)
        sessions = len(sim.sessions)  # the pooled one and the migration's own
        handle.stop_following()
        tail = list(rest)  # ends at the next poll, not with the migration
        assert not any(p.phase.terminal for p in tail)
        assert handle.result is None
        assert len(sim.sessions) == sessions - 1
        deadline = time.monotonic() + 20
        while True:  # XAPI finishes the move on its own
            after = next(v for v in backend.inventory().vms if v.ref == vm)
            if after.host == lab2:
                break
            assert time.monotonic() < deadline, "the move did not finish in XAPI"
            time.sleep(0.2)
        assert after.power_state == PowerState.RUNNING
