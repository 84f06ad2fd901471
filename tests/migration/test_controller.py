"""The migration controller against the XAPI simulator through the real Xen backend and a real
pinger (the lab's VM addresses are loopback, so they answer)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from poolctl.audit import AuditLog, MigrationRecord
from poolctl.backends.base import CancelRefused
from poolctl.backends.xen.backend import XenBackend
from poolctl.config import pool_config
from poolctl.migration.controller import MigrationBusy, MigrationController, MigrationPlan, MigrationRegistry
from poolctl.migration.many import check_hosts
from poolctl.migration.words import headline, ping_summary
from poolctl.model import VM, Inventory, MigrationPhase
from poolctl.sim.xapi import Simulator

pytestmark = pytest.mark.timeout(60)

PASSWORD = "s3cret-Pa55word"


@dataclass
class Pool:
    sim: Simulator
    backend: XenBackend
    inv: Inventory

    def vm(self, name: str) -> VM:
        return next(v for v in self.inv.vms if v.name == name)

    def host(self, name: str) -> str:
        return next(h.ref for h in self.inv.hosts if h.name == name)

    def resident(self, name: str) -> str:
        return self.sim.db.field("VM", self.sim.vm_ref(name), "resident_on")

    def plan(self, name: str, dest: str, **kw) -> MigrationPlan:
        vm = self.vm(name)
        src = next(h.name for h in self.inv.hosts if h.ref == vm.host)
        kw.setdefault("ping_address", vm.ips[0])
        return MigrationPlan(
            pool="lab",
            vm=vm.ref,
            vm_name=vm.name,
            vm_uuid=vm.uuid,
            source=vm.host,
            source_name=src,
            destination=self.host(dest),
            destination_name=dest,
            **kw,
        )


def _pool(seconds: float) -> Iterator[Pool]:
    sim = Simulator.from_scenario("lab", password=PASSWORD, migration_seconds=seconds)
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
def pool() -> Iterator[Pool]:
    yield from _pool(2.0)


@pytest.fixture
def slow_pool() -> Iterator[Pool]:
    yield from _pool(6.0)  # a final phase long enough (0.9 s) to catch between 0.5 s polls


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("POOLCTL_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def start(pool: Pool, plan: MigrationPlan, **kw) -> tuple[MigrationController, threading.Thread]:
    c = MigrationController(
        pool.backend,
        plan,
        registry=kw.pop("registry", MigrationRegistry()),
        secrets=[PASSWORD],
        ping_tail_s=kw.pop("ping_tail_s", 0.3),
        **kw,
    )
    c.claim()
    t = threading.Thread(target=c.run, daemon=True)
    t.start()
    return c, t


def wait(cond, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def log_lines(state_dir) -> list[dict]:
    return [json.loads(line) for line in (state_dir / "migrations.jsonl").read_text().splitlines()]


def test_success_moves_the_vm_pings_without_loss_and_logs_a_record(pool, state_dir):
    c, t = start(pool, pool.plan("web-01", "xcp-lab-2"))
    seen = set()
    while t.is_alive():
        seen.add(c.progress.phase)
        time.sleep(0.05)
    assert MigrationPhase.COPYING in seen
    rec = c.record
    assert rec is not None and rec.result == "success"
    assert pool.resident("web-01") == pool.host("xcp-lab-2")
    assert rec.now_on == "xcp-lab-2" and rec.source == "xcp-lab-1"
    # Wall-clock figures are relative to the run itself: CI is a loaded 2-core machine where the
    # pinger may skip slots, so absolute counts and gaps belong in benchmarks, not here.
    samples, stats = c.ping_samples(), c.ping_stats()
    assert rec.ping_lost == 0 and not any(s.lost for s in samples)  # loopback answers every probe
    assert rec.ping_sent == len(samples) >= 2
    assert [s.seq for s in samples] == list(range(len(samples)))  # the record counts every probe
    span = samples[-1].sent_at - samples[0].sent_at
    assert span >= rec.duration_s  # pinging covered the whole move (plus its tail)
    interval = stats.interval
    assert rec.ping_sent <= stats.elapsed_s / interval + 1.5  # a fixed rate: never bursts
    widest = max(b.sent_at - a.sent_at for a, b in zip(samples, samples[1:]))
    assert rec.ping_longest_gap_s == pytest.approx(widest, abs=0.002)  # no loss: the widest spacing
    assert rec.duration_s >= 2.0
    assert c.progress.phase == MigrationPhase.DONE and c.progress.fraction == 1.0
    assert headline(rec).startswith("Migration complete in ")
    assert "0 lost" in ping_summary(rec)
    (line,) = log_lines(state_dir)
    assert line["vm"] == "web-01" and line["result"] == "success" and line["destination"] == "xcp-lab-2"
    assert line["ping_sent"] == rec.ping_sent and line["ping_method"]
    assert line["vm_uuid"] == pool.vm("web-01").uuid


def test_audit_log_holds_no_password_nor_session_id(pool, state_dir):
    sessions_seen: set[str] = set()
    real_login = pool.sim.sessions.login

    def spy_login(*args):
        ref = real_login(*args)
        sessions_seen.add(ref)
        return ref

    pool.sim.sessions.login = spy_login  # record every session the simulator hands out
    c, t = start(pool, pool.plan("web-01", "xcp-lab-2"))
    t.join(20)
    c2, t2 = start(pool, pool.plan("web-02", "xcp-lab-2"))
    wait(lambda: c2.progress.cancellable, "a cancellable phase")
    c2.cancel()
    t2.join(20)
    text = (state_dir / "migrations.jsonl").read_text()
    assert len(text.splitlines()) == 2 and sessions_seen
    assert PASSWORD not in text
    with pool.sim.sessions._lock:  # the ones still open, e.g. the backend's own from before the spy
        sessions_seen |= set(pool.sim.sessions._records)
    for ref in sessions_seen:
        assert ref not in text


def test_cancel_in_copy_phase_leaves_vm_on_source(pool, state_dir):
    c, t = start(pool, pool.plan("web-01", "xcp-lab-2"))
    wait(lambda: c.progress.phase == MigrationPhase.COPYING and c.progress.cancellable, "copying")
    c.cancel()
    t.join(20)
    assert c.record.result == "cancelled"
    assert pool.resident("web-01") == pool.host("xcp-lab-1")
    assert c.record.now_on == "xcp-lab-1"
    assert "still runs on xcp-lab-1" in headline(c.record)
    assert log_lines(state_dir)[0]["result"] == "cancelled"


def test_cancel_refused_in_final_phase(slow_pool):
    pool = slow_pool
    c, t = start(pool, pool.plan("web-01", "xcp-lab-2"))
    wait(lambda: c.progress.phase == MigrationPhase.FINISHING, "the final phase")
    assert not c.progress.cancellable
    with pytest.raises(CancelRefused, match="past the point"):
        c.cancel()
    t.join(20)
    assert c.record.result == "success"
    assert pool.resident("web-01") == pool.host("xcp-lab-2")


def test_backend_refuses_cancel_past_point_of_no_return(slow_pool):
    """The backend's own CancelRefused, not only the controller's guard."""
    pool = slow_pool
    c, t = start(pool, pool.plan("web-01", "xcp-lab-2"))
    wait(lambda: c.progress.phase == MigrationPhase.FINISHING, "the final phase")
    with pytest.raises(CancelRefused, match="past the point where it can be cancelled"):
        c.handle.cancel()
    t.join(20)
    assert c.record.result == "success"


def test_failure_quotes_the_hypervisor(pool, state_dir):
    c, t = start(pool, pool.plan("web-02", "xcp-lab-2"))
    wait(lambda: c.progress.phase == MigrationPhase.COPYING, "copying")
    pool.sim.set_power_state("web-02", "Halted")  # out of band, as from the host's console
    t.join(20)
    rec = c.record
    assert rec.result == "failed"
    assert "VM_BAD_POWER_STATE" in rec.error and rec.error.startswith("XAPI:")
    assert headline(rec).startswith("Migration failed after")
    assert log_lines(state_dir)[0]["error"] == rec.error


def test_refused_start_is_a_refused_record(pool, state_dir):
    c, t = start(pool, pool.plan("cache-01", "xcp-lab-2"))  # local disk: XAPI refuses before moving
    t.join(20)
    assert c.record.result == "refused" and c.refused and c.record.error
    assert c.record.now_on == "xcp-lab-1"
    assert pool.resident("cache-01") == pool.host("xcp-lab-1")


def test_second_migration_of_same_vm_is_refused(pool):
    registry = MigrationRegistry()
    c, t = start(pool, pool.plan("web-01", "xcp-lab-2"), registry=registry)
    second = MigrationController(pool.backend, pool.plan("web-01", "xcp-lab-3"), registry=registry)
    with pytest.raises(MigrationBusy, match=r"web-01 is already migrating \(xcp-lab-1 → xcp-lab-2"):
        second.claim()
    assert registry.get("lab", pool.vm("web-01").ref) is c
    t.join(20)
    assert registry.active() == []
    second.claim()  # free again once the first has ended
    registry.release(second)


def test_two_migrations_at_once(pool):
    registry = MigrationRegistry()
    a, ta = start(pool, pool.plan("web-01", "xcp-lab-2"), registry=registry)
    b, tb = start(pool, pool.plan("app-01", "xcp-lab-1"), registry=registry)
    assert len(registry.active()) == 2
    ta.join(20)
    tb.join(20)
    assert a.record.result == b.record.result == "success"
    assert pool.resident("app-01") == pool.host("xcp-lab-1")


def test_bad_ping_address_does_not_stop_the_move(pool):
    c, t = start(pool, pool.plan("web-01", "xcp-lab-2", ping_address="no such host.invalid"))
    t.join(20)
    assert c.record.result == "success"
    assert c.record.ping_sent == 0 and "no such host.invalid" in c.record.ping_error
    assert ping_summary(c.record).startswith("no ping: ")


def test_eta_and_elapsed(pool):
    c, t = start(pool, pool.plan("web-01", "xcp-lab-2"))
    wait(lambda: c.eta_s() is not None, "an ETA")
    assert 0 <= c.eta_s() < 10
    t.join(20)
    assert c.eta_s() is None and c.elapsed_s() >= 2.0


def test_check_hosts_in_parallel(pool):
    vm = pool.vm("cache-01")
    checks = check_hosts(pool.backend, vm.ref, [h.ref for h in pool.inv.hosts if h.ref != vm.host])
    two, three = checks[pool.host("xcp-lab-2")], checks[pool.host("xcp-lab-3")]
    assert any("Local storage xcp-lab-1" in p for p in two.problems)
    assert any("not enough free memory on xcp-lab-3" in p for p in three.problems)


def test_audit_log_read_newest_first_and_names_bad_lines(tmp_path):
    log = AuditLog(tmp_path / "m.jsonl")
    base = dict(pool="p", vm="v", source="a", destination="b", result="success")
    log.append(MigrationRecord(id="1", time="2024-01-01T00:00:00+00:00", **base))
    with open(log.path, "a") as f:
        f.write("{not json\n")
    log.append(MigrationRecord(id="2", time="2024-01-02T00:00:00+00:00", **base))
    records, problems = log.read()
    assert [r.id for r in records] == ["2", "1"]
    assert len(problems) == 1 and f"{log.path}:2: unreadable entry" in problems[0]
    assert oct(log.path.stat().st_mode & 0o777) == "0o600"


def test_unwritable_audit_log_is_reported_not_fatal(pool, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    c, t = start(pool, pool.plan("web-01", "xcp-lab-2"), audit=AuditLog(blocker / "sub" / "m.jsonl"))
    t.join(20)
    assert c.record.result == "success"
    assert "cannot write the migration log" in c.audit_error and str(blocker) in c.audit_error


def test_abandon_logs_unfinished_once(pool, state_dir):
    c, t = start(pool, pool.plan("web-01", "xcp-lab-2"))
    wait(lambda: c.progress.phase == MigrationPhase.COPYING, "copying")
    rec = c.abandon("poolctl quit")
    assert rec.result == "unfinished" and rec.error == "poolctl quit" and rec.ping_sent > 0
    assert headline(rec).startswith("Stopped watching after")
    t.join(5)  # following stops at once (stop_following), ...
    assert not t.is_alive()
    # ... while the move itself carries on to its end in the hypervisor
    wait(lambda: pool.resident("web-01") == pool.host("xcp-lab-2"), "web-01 on xcp-lab-2")
    assert c.record is rec and [line["result"] for line in log_lines(state_dir)] == ["unfinished"]
    assert c.progress.phase == MigrationPhase.COPYING  # nothing made up after the abandon


def test_abandon_during_the_ping_tail_logs_the_known_outcome(pool, state_dir):
    c, t = start(pool, pool.plan("web-01", "xcp-lab-2"), ping_tail_s=5.0)
    wait(lambda: c.ended, "the end of the move")
    assert not c.finished.is_set()  # still pinging its tail
    rec = c.abandon("poolctl quit")
    assert rec.result == "success" and rec.now_on == "xcp-lab-2" and rec.error == "" and rec.ping_sent > 0
    t.join(20)
    assert c.record is rec and [line["result"] for line in log_lines(state_dir)] == ["success"]
