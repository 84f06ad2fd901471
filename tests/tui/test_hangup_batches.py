"""A hang-up (the SSH connection dropped) while an evacuation runs in the TUI (issue 17): the
batch's running move is followed to its end, no new one starts, the audit log says how each
move ended and that the batch was stopped by the hang-up, and poolctl then quits (129).

A pilot test against the real simulator; what the hang-up does once its signal has arrived
(``HangUp.follow_then_quit``) is run as the signal handler runs it, without the handler's
first step, pointing the terminal's descriptors at /dev/null (pytest's own output is on
them). The real signal through a real SSH session is tests/faults/test_ssh_session.py's."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator

import pytest

from poolctl.tui.app import create_app
from poolctl.tui.migrations.hangup import REASON
from tests.support.tui import Lab, loaded, served_lab, wait_for
from tests.tui.test_maintenance import open_evacuation

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def lab() -> Iterator[Lab]:
    yield from served_lab(migration_seconds=3.0)


def records(state_dir) -> list[dict]:
    path = state_dir / "migrations.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


async def test_a_hang_up_mid_evacuation_follows_the_running_move_and_starts_no_other(lab, tmp_path, monkeypatch):
    monkeypatch.setenv("POOLCTL_STATE_DIR", str(tmp_path))
    app = create_app([lab.pool()])
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        dialog = await open_evacuation(pilot, "xcp-lab-3")  # db-02 and build-01; "auto" starts one first
        assert len(dialog.plan.moves) == 2
        dialog.query_one("#bd-start").press()
        center = app.migrations
        await wait_for(pilot, lambda: len(center.moving()) == 1, "the first move to run", timeout=20)
        first = center.moving()[0]
        await wait_for(pilot, lambda: (first.progress.fraction or 0) > 0, "the first move's progress", timeout=20)
        assert not first.ended
        app.hangup.follow_then_quit()
        await wait_for(pilot, lambda: app.return_code is not None, "poolctl to quit", timeout=40)
    assert app.return_code == 128 + signal.SIGHUP
    rows = records(tmp_path)
    moves = [r for r in rows if "kind" not in r or r.get("kind") == "migration"]
    (batch,) = [r for r in rows if r.get("kind") == "evacuation"]
    # the running move was followed to its end: its line says how it ended, where the VM is
    assert [(m["vm"], m["result"], m["now_on"] != "") for m in moves] == [(first.plan.vm_name, "success", True)]
    assert first.ended and first.record is not None and first.record.result == "success"
    # the other one never started, and the batch's record says why
    other = ({"db-02", "build-01"} - {first.plan.vm_name}).pop()
    assert batch["moved"] == [first.plan.vm_name] and batch["not_moved"] == [other], batch
    assert batch["reason"] == REASON and batch["result"] == "failed", batch
    assert not [c for c in center.runs if c.plan.vm_name == other]  # no controller was even made
