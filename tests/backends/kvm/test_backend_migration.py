"""The KVM migration handle: its progress (progress.py's reading of libvirt's jobStats, told
what the handle knows: a cancel, post-copy), its settings on the job, following it.

libvirt's test driver cannot migrate (the real runs are in tests/lab); here the handle
is built on the demo pool without starting it, and fed jobStats dicts as recorded from
QEMU 7.2 / libvirt 9.0 in the lab."""

from __future__ import annotations

import libvirt
import pytest

from poolctl.backends.base import CancelRefused
from poolctl.backends.kvm.migration import KvmMigration, MigrationSetup
from poolctl.model import MigrationOptions, MigrationPhase
from tests.support.kvm_helpers import by_name

RUNNING = (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_RUNNING_MIGRATED)
SWITCHOVER = (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_MIGRATION)
POSTCOPY = (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_POSTCOPY)
MIB = 1 << 20


def _stats(processed: int, remaining: int, total: int = 135012352, iteration: int = 1, dirty: int = 0) -> dict:
    return {
        "type": libvirt.VIR_DOMAIN_JOB_UNBOUNDED,
        "data_total": total,
        "data_processed": processed,
        "data_remaining": remaining,
        "memory_total": total,
        "memory_processed": processed,
        "memory_remaining": remaining,
        "memory_iteration": iteration,
        "memory_dirty_rate": dirty,
        "memory_page_size": 4096,
        "downtime": 300,  # QEMU's target in flight, not the real figure
    }


def _handle(backend, options: MigrationOptions | None = None) -> KvmMigration:
    inv = backend.inventory()
    web = by_name(inv, "kvm-web-01")
    src, rec = backend.locate(web.ref)
    dst = backend.host_by_ref(by_name(inv, "kvm-demo-b").ref)
    dom = src.conn.lookupByUUIDString(web.uuid)
    setup = MigrationSetup(notify=backend.queue.put, migrating=set(), p2p=True, migration_uris={}, timeout_s=900.0)
    return KvmMigration(setup, src, dst, web.uuid, web.name, dom, 0, {}, options or MigrationOptions())


def test_phases_follow_the_job(demo):
    h = _handle(demo)
    seq = [
        ({"type": 0}, RUNNING),  # the first polls: no job data yet
        (_stats(0, 0, total=0), RUNNING),  # zeros while the destination prepares
        (_stats(1680693, 131000000), RUNNING),
        (_stats(60 * MIB, 70 * MIB, dirty=25), RUNNING),
        (_stats(128 * MIB, 1 * MIB, iteration=2), SWITCHOVER),
        ({"type": 0}, SWITCHOVER),  # the job ended; the call has not returned yet
    ]
    best = 0.0
    out = []
    for stats, (state, reason) in seq:
        p = h._progress(stats, state, reason, best)
        best = p.fraction
        out.append(p)
    assert [p.phase for p in out] == [
        MigrationPhase.PREPARING,
        MigrationPhase.PREPARING,
        MigrationPhase.COPYING,
        MigrationPhase.COPYING,
        MigrationPhase.STOP_AND_COPY,
        MigrationPhase.FINISHING,
    ]
    fractions = [p.fraction for p in out]
    assert fractions == sorted(fractions) and 0.0 <= fractions[0] and fractions[-1] < 1.0
    assert out[3].bytes_done == 60 * MIB and out[3].bytes_total == 135012352
    assert out[3].dirty_rate == 25 * 4096 and out[4].iteration == 2
    assert [p.cancellable for p in out] == [True, True, True, True, True, False]


def test_a_source_refusing_jobstats_polls_as_preparing(demo):
    h = _handle(demo)  # libvirt's test driver has no virDomainGetJobStats: the handle polls no figures
    stats, state, reason = h._poll()
    assert stats == {} and state == libvirt.VIR_DOMAIN_RUNNING
    p = h._progress(stats, state, reason, 0.25)
    assert (p.phase, p.fraction, p.cancellable, p.bytes_done) == (MigrationPhase.PREPARING, 0.25, True, None)


def test_post_copy_is_not_cancellable(demo):
    h = _handle(demo)
    p = h._progress(_stats(64 * MIB, 64 * MIB, iteration=4), *POSTCOPY, 0.0)
    assert p.cancellable is False and "post-copy" in p.message
    assert h._progress(_stats(80 * MIB, 40 * MIB, iteration=4), *RUNNING, p.fraction).cancellable is False


def test_post_copy_the_domain_shows_refuses_a_cancel(demo):
    h = _handle(demo)  # poolctl did not switch: libvirt's state of the domain tells
    h._progress(_stats(64 * MIB, 64 * MIB, iteration=4), *POSTCOPY, 0.0)
    with pytest.raises(CancelRefused, match=r"already runs on kvm-demo-b \(post-copy\)"):
        h.cancel()
    assert h._steering.postcopy  # nor does poolctl switch it again


def test_fraction_never_goes_back_when_dirty_pages_come_back(demo):
    h = _handle(demo)
    a = h._progress(_stats(100 * MIB, 10 * MIB), *RUNNING, 0.0)
    b = h._progress(_stats(110 * MIB, 30 * MIB, iteration=2), *RUNNING, a.fraction)
    assert b.fraction == a.fraction


def test_a_cancelled_job_is_not_shown_as_finishing(demo):
    h = _handle(demo)
    copying = h._progress(_stats(30 * MIB, 90 * MIB), *RUNNING, 0.0)
    h._cancel_requested = True  # what cancel() records before abortJob
    after = h._progress({"type": 0}, *RUNNING, copying.fraction)
    assert after.phase == MigrationPhase.COPYING and not after.cancellable and "cancelling" in after.message


def test_phases_never_go_backwards_after_a_switchover_pause(demo):
    h = _handle(demo)
    h._progress(_stats(128 * MIB, 1 * MIB, iteration=2), *SWITCHOVER, 0.0)
    later = h._progress(_stats(129 * MIB, 1 * MIB, iteration=3), *RUNNING, 0.9)
    assert later.phase == MigrationPhase.STOP_AND_COPY


def test_a_refused_max_downtime_is_told_not_swallowed(demo, caplog):
    # libvirt's test driver refuses migrateSetMaxDowntime, as a daemon without the job would
    handle = _handle(demo, MigrationOptions(max_downtime_ms=30))
    assert handle.note() == ""
    handle._steering.steer(
        handle._dom, _stats(1 * MIB, 100 * MIB), cancelling=False
    )  # the job shows: the setting is tried on it
    note = handle.note()
    assert note.startswith("max downtime 30 ms not applied (") and note.endswith("QEMU's default limit applies")
    assert "support" in note  # libvirt's own words, e.g. "this function is not supported ..."
    assert any(r.getMessage().endswith(note) for r in caplog.records)


def test_no_note_without_a_max_downtime(demo):
    handle = _handle(demo)
    handle._steering.steer(handle._dom, _stats(1 * MIB, 100 * MIB), cancelling=False)
    assert handle.note() == ""


def test_stop_following_ends_updates_without_an_outcome(demo):
    handle = _handle(demo)  # never started: only following is exercised
    updates = handle.updates()
    assert next(updates).phase == MigrationPhase.PREPARING
    handle.stop_following()
    assert list(updates) == []  # ends at the next poll, with no terminal phase made up
    assert handle.result is None


def _tuned(backend, options: MigrationOptions) -> KvmMigration:
    h = _handle(backend, options)
    return h


def test_post_copy_waits_for_passes_that_stop_shrinking(demo):
    """Allowed post-copy switches only once a pass leaves no less than the one before."""
    h = _tuned(demo, MigrationOptions(post_copy=True))
    shrinking = [_stats(60 * MIB, r * MIB, iteration=i) for i, r in ((1, 100), (2, 40), (3, 20), (4, 9))]
    assert [h._steering.postcopy_reason(st) for st in shrinking] == ["", "", "", ""]
    h = _tuned(demo, MigrationOptions(post_copy=True))
    stalled = [_stats(60 * MIB, r * MIB, iteration=i) for i, r in ((1, 100), (2, 30), (3, 29))]
    reasons = [h._steering.postcopy_reason(st) for st in stalled]
    assert reasons[:2] == ["", ""]
    assert reasons[2] == "pass 3 left 29 MiB, no less than pass 2: pre-copy is not converging"


def test_post_copy_gives_auto_converge_two_more_passes(demo):
    h = _tuned(demo, MigrationOptions(post_copy=True, auto_converge=True))
    passes = [_stats(60 * MIB, r * MIB, iteration=i) for i, r in ((1, 100), (2, 30), (3, 29), (4, 29), (5, 29))]
    assert [bool(h._steering.postcopy_reason(st)) for st in passes] == [False, False, False, False, True]


def test_post_copy_now_switches_after_the_first_pass(demo):
    h = _tuned(demo, MigrationOptions(post_copy=True, post_copy_now=True))
    assert h._steering.postcopy_reason(_stats(10 * MIB, 100 * MIB, iteration=1)) == ""
    assert (
        h._steering.postcopy_reason(_stats(128 * MIB, 90 * MIB, iteration=2))
        == "switched after the first pass, as chosen"
    )


def test_dirty_rate_is_not_measurable_on_the_test_driver(demo):
    web = by_name(demo.inventory(), "kvm-web-01")
    assert demo.measure_dirty_rate(web.ref, 1) is None
