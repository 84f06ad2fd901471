"""The batch runner against the XAPI simulator through the real Xen backend, real controllers and
real pinger (the VMs' addresses are loopback, so they answer). Faults are real ones too: a VM
shut down under the plan, as an admin at the console would."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from poolctl.backends.base import Backend
from poolctl.backends.xen.backend import XenBackend
from poolctl.config import pool_config
from poolctl.migration.batch import (
    BatchDone,
    BatchEvent,
    BatchRunner,
    CancelAnswer,
    LevelChanged,
    MoveFinished,
    MoveProgress,
    MoveStarted,
    Stopping,
)
from poolctl.migration.batch_summary import MoveLine, Summary
from poolctl.migration.concurrency import AutoRule, ConcurrencyRule, FixedRule
from poolctl.migration.controller import MigrationController, MigrationPlan, MigrationRegistry
from poolctl.migration.many import check_hosts
from poolctl.migration.planner import Plan, evacuees, plan_moves
from poolctl.model import Inventory, MigrationPhase
from poolctl.sim.xapi import Simulator
from poolctl.sim.xapi.scenario import Scenario, parse_scenario

pytestmark = pytest.mark.timeout(60)

PASSWORD = "s3cret-Pa55word"


def row_scenario(vms: int) -> Scenario:
    """One source host with ``vms`` small VMs on shared storage, two empty destinations."""
    return parse_scenario(
        {
            "pool": "row",
            "default_sr": "shared",
            "hosts": [
                {"name": "src", "address": "127.0.2.1", "memory_gib": 16, "master": True},
                {"name": "dst-a", "address": "127.0.2.2", "memory_gib": 16},
                {"name": "dst-b", "address": "127.0.2.3", "memory_gib": 16},
            ],
            "srs": [{"name": "shared", "type": "nfs", "shared": True, "size_gib": 500}],
            "networks": [{"name": "VM network", "bridge": "xenbr1"}],
            "vms": [
                {
                    "name": f"a{i}",
                    "host": "src",
                    "memory_gib": 1,
                    "ip": f"127.0.20.{i}",
                    "disks": [{"sr": "shared", "size_gib": 10}],
                    "networks": ["VM network"],
                }
                for i in range(1, vms + 1)
            ],
        },
        "row",
    )


@dataclass
class Pool:
    sim: Simulator
    backend: XenBackend
    inv: Inventory
    registry: MigrationRegistry = field(default_factory=MigrationRegistry)

    def host(self, name: str) -> str:
        return next(h.ref for h in self.inv.hosts if h.name == name)

    def resident(self, name: str) -> str:
        return self.sim.db.field("VM", self.sim.vm_ref(name), "resident_on")

    def evacuation(self, host: str) -> Plan:
        """The plan from the backend's real pre-checks of every (VM, other host) pair."""
        vms = evacuees(self.inv.vms, self.host(host))
        others = [h.ref for h in self.inv.hosts if h.name != host]
        checks = {v.ref: check_hosts(self.backend, v.ref, others) for v in vms}
        return plan_moves(vms, self.inv.hosts, checks)

    def make_controller(self, backend: Backend, plan: MigrationPlan) -> MigrationController:
        return MigrationController(backend, plan, registry=self.registry, secrets=[PASSWORD], ping_tail_s=0.2)

    def runner(self, plan: Plan, rule: ConcurrencyRule, on_event: Callable[[BatchEvent], None]) -> BatchRunner:
        return BatchRunner(self.backend, plan, self.make_controller, rule, pool="lab", on_event=on_event, poll_s=0.05)


def _pool(scenario: str | Scenario, seconds: float) -> Iterator[Pool]:
    sim = Simulator.from_scenario(scenario, password=PASSWORD, migration_seconds=seconds)
    server = sim.serve(host="127.0.0.1", port=0)
    backend = XenBackend(
        pool_config({"name": "lab", "backend": "xen", "url": server.url, "username": "root", "password": PASSWORD})
    )
    backend.connect()
    try:
        yield Pool(sim, backend, backend.inventory())
    finally:
        backend.close()
        sim.close()


@pytest.fixture
def lab() -> Iterator[Pool]:
    yield from _pool("lab", 1.0)


@pytest.fixture
def row() -> Iterator[Pool]:
    yield from _pool(row_scenario(5), 2.0)  # a move outlasts a failure two 0.5 s polls after it


@pytest.fixture
def quick_row() -> Iterator[Pool]:
    yield from _pool(row_scenario(4), 0.6)


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("POOLCTL_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def most_at_once(events: list[BatchEvent]) -> int:
    running = most = 0
    for e in events:
        if isinstance(e, MoveStarted):
            running += 1
            most = max(most, running)
        elif isinstance(e, MoveFinished) and e.record is not None:
            running -= 1
    return most


def in_thread(runner: BatchRunner) -> tuple[threading.Thread, list[Summary]]:
    out: list[Summary] = []
    t = threading.Thread(target=lambda: out.append(runner.run()), daemon=True)
    t.start()
    return t, out


def test_evacuating_a_lab_host_two_at_a_time_empties_it_and_pings_every_vm(lab, state_dir):
    plan = lab.evacuation("xcp-lab-3")
    assert plan.ok and {p.vm.name for p in plan.moves} == {"db-02", "build-01"}
    # spread: the two VMs go to different hosts (most memory left first)
    assert len({p.destination.name for p in plan.moves}) == 2
    events: list[BatchEvent] = []
    summary = lab.runner(plan, FixedRule(2), events.append).run()
    assert summary.ok and not summary.not_moved and not summary.stop_reason
    for p in plan.moves:
        assert lab.resident(p.vm.name) == p.destination.ref != lab.host("xcp-lab-3")
    assert not evacuees(lab.backend.inventory().vms, lab.host("xcp-lab-3"))  # the host is empty
    assert most_at_once(events) == summary.most_at_once == 2  # both ran at the same time
    assert isinstance(events[0], LevelChanged) and events[0].decision.reason == "2 at a time (--batch 2)"
    assert any(isinstance(e, MoveProgress) and e.progress.phase == MigrationPhase.COPYING for e in events)
    assert isinstance(events[-1], BatchDone) and events[-1].summary is summary
    for line in summary.lines:  # each VM had its own pinger, on its own address
        assert line.sent >= 2 and line.lost == 0 and line.longest_gap_s is not None
    finished = {e.placement.vm.name: e for e in events if isinstance(e, MoveFinished)}
    assert {e.record.ping_address for e in finished.values()} == {"127.0.10.22", "127.0.10.61"}
    text = summary.text_lines()
    assert len(text) == 3
    db = next(t for t in text if t.startswith("db-02"))
    dest = next(p.destination.name for p in plan.moves if p.vm.name == "db-02")
    assert db.startswith(f"db-02    → {dest}  ") and "  sent " in db and "  lost 0  longest gap " in db
    assert text[-1].startswith("2 of 2 VMs moved in ") and "at most 2 at once; lost 0 probes" in text[-1]
    log = (state_dir / "migrations.jsonl").read_text().splitlines()
    assert len(log) == 2  # one audit record per VM


def test_the_plan_from_real_pre_checks_names_the_vm_with_a_local_disk(lab):
    plan = lab.evacuation("xcp-lab-1")
    assert not plan.ok
    (cache,) = plan.blocked
    assert cache.vm.name == "cache-01"
    assert "Local storage xcp-lab-1" in cache.why and "xcp-lab-2" in cache.why and "xcp-lab-3" in cache.why
    with pytest.raises(ValueError, match="cache-01"):
        lab.runner(plan, FixedRule(2), print)
    assert lab.resident("cache-01") == lab.host("xcp-lab-1")  # nothing moved


def test_a_move_that_fails_stops_new_starts_and_lets_the_running_one_finish(row):
    plan = row.evacuation("src")
    assert plan.ok and [p.vm.name for p in plan.moves] == ["a1", "a2", "a3", "a4", "a5"]
    events: list[BatchEvent] = []

    def shut_down_a2_while_it_moves(e: BatchEvent) -> None:
        events.append(e)
        if isinstance(e, MoveProgress) and e.placement.vm.name == "a2" and e.progress.phase == MigrationPhase.COPYING:
            if row.sim.db.field("VM", row.sim.vm_ref("a2"), "power_state") == "Running":
                row.sim.set_power_state("a2", "Halted")  # the admin, at the console

    summary = row.runner(plan, FixedRule(2), shut_down_a2_while_it_moves).run()
    lines = {line.vm: line for line in summary.lines}
    assert lines["a1"].outcome == "success" and row.resident("a1") != row.host("src")
    assert lines["a2"].outcome == "failed" and "halted" in lines["a2"].error.lower()
    for name in ("a3", "a4", "a5"):
        assert lines[name].outcome == "not started"
        assert row.resident(name) == row.host("src")  # still running where it was
    assert not summary.ok and summary.stop_reason == "the move of a2 failed"
    assert [e.placement.vm.name for e in events if isinstance(e, MoveStarted)] == ["a1", "a2"]
    (stop,) = [e for e in events if isinstance(e, Stopping)]
    assert stop.reason == "the move of a2 failed: no more moves start; the running one finishes"
    # a1 finished after the stop: it was let run to its end
    order = [e.placement.vm.name for e in events if isinstance(e, MoveFinished)]
    assert order == ["a2", "a1"]
    text = summary.text_lines()
    assert text[2].startswith("a3 → dst-") and text[2].endswith("  not moved: not started (the move of a2 failed)")
    assert "1 of 5 VMs moved" in text[-1] and "a2 (failed)" in text[-1] and "a5 (not started)" in text[-1]


def test_a_vm_shut_down_after_planning_fails_at_its_start_and_nothing_after_it_starts(row):
    plan = row.evacuation("src")
    events: list[BatchEvent] = []

    def shut_down_a2_once_a1_moves(e: BatchEvent) -> None:
        events.append(e)
        if isinstance(e, MoveStarted) and e.placement.vm.name == "a1":
            row.sim.set_power_state("a2", "Halted")

    summary = row.runner(plan, FixedRule(1), shut_down_a2_once_a1_moves).run()
    outcomes = [(line.vm, line.outcome) for line in summary.lines]
    assert outcomes == [
        ("a1", "success"),
        ("a2", "failed"),
        ("a3", "not started"),
        ("a4", "not started"),
        ("a5", "not started"),
    ]
    assert "halted" in summary.lines[1].error
    assert most_at_once(events) == summary.most_at_once == 1


def test_cancel_stops_the_running_moves_and_starts_no_more(row):
    plan = row.evacuation("src")
    events: list[BatchEvent] = []
    runner = row.runner(plan, FixedRule(2), events.append)
    t, out = in_thread(runner)
    deadline = time.monotonic() + 10
    while not (
        len(runner.running()) == 2 and all(c.progress.cancellable for c in runner.running())
    ):  # both in their pre-copy
        assert time.monotonic() < deadline, "the moves never became cancellable"
        time.sleep(0.02)
    answers = runner.cancel()
    assert sorted(answers) == ["a1: cancel asked", "a2: cancel asked"]
    t.join(15)
    (summary,) = out
    assert summary.cancelled and summary.stop_reason == "cancelled"
    assert [line.outcome for line in summary.lines] == ["cancelled", "cancelled"] + ["not started"] * 3
    for name in ("a1", "a2", "a3", "a4", "a5"):
        assert row.resident(name) == row.host("src")
    assert {e.vm for e in events if isinstance(e, CancelAnswer)} == {"a1", "a2"}
    assert "0 of 5 VMs moved" in summary.total()


def test_auto_starts_with_one_move_and_says_why_it_changes(quick_row):
    row = quick_row
    plan = row.evacuation("src")
    events: list[BatchEvent] = []
    summary = row.runner(plan, AutoRule(), events.append).run()
    print("\n".join(d.reason for d in summary.levels), *summary.text_lines(), sep="\n")
    assert summary.ok and len(summary.moved) == 4
    assert summary.levels[0].level == 1 and "starting with 1" in summary.levels[0].reason
    for d in summary.levels[1:]:
        assert d.changed and " → " in d.reason  # every change has its reason in words
    assert [e.decision for e in events if isinstance(e, LevelChanged)] == list(summary.levels)
    starts = [e for e in events if isinstance(e, MoveStarted)]
    assert starts[0].level == 1  # the first move ran alone
    for p in plan.moves:
        assert row.resident(p.vm.name) == p.destination.ref


def test_the_summary_lines_the_cli_prints():
    moved = MoveLine("web-01", "xcp-lab-1", "xcp-lab-2", "success", "xcp-lab-2", 8.1, 81, 0, 0.1)
    assert moved.text() == "web-01 → xcp-lab-2  8.1 s  sent 81  lost 0  longest gap 0.10 s"
    failed = MoveLine("db-01", "xcp-lab-1", "xcp-lab-3", "failed", "xcp-lab-1", 2.0, 20, 1, 0.2, "it is halted")
    why = "not started (the move of db-01 failed)"
    waiting = MoveLine("web-02", "xcp-lab-1", "xcp-lab-2", "not started", error=why)
    summary = Summary((moved, failed, waiting), 12.34, (), most_at_once=2, stop_reason="the move of db-01 failed")
    assert summary.text_lines() == [
        "web-01 → xcp-lab-2  8.1 s  sent 81  lost 0  longest gap 0.10 s",
        "db-01  → xcp-lab-3  failed after 2.0 s: it is halted; still on xcp-lab-1  sent 20  lost 1  longest gap 0.20 s",
        "web-02 → xcp-lab-2  not moved: not started (the move of db-01 failed)",
        "1 of 3 VMs moved in 12.3 s, at most 2 at once; lost 1 probe, longest gap 0.20 s (db-01); "
        "not moved: db-01 (failed), web-02 (not started)",
    ]


def test_a_cancelled_line_says_cancelled_once():
    line = MoveLine("web-01", "xcp-lab-1", "xcp-lab-2", "cancelled", "xcp-lab-1", 2.5, 25, 0, 0.1, "cancelled")
    assert (
        line.text()
        == "web-01 → xcp-lab-2  cancelled after 2.5 s; still on xcp-lab-1  sent 25  lost 0  longest gap 0.10 s"
    )
