"""progress.py's reading of libvirt's job stats, on the dicts libvirt-python returns: keyed by
libvirt's own VIR_DOMAIN_JOB_* names, figures as QEMU 7.2 / libvirt 9.0 gave them in the lab."""

from __future__ import annotations

import libvirt
import pytest

from poolctl.backends.kvm.progress import JobProgress
from poolctl.model import MiB, MigrationPhase

RUNNING = (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_RUNNING_MIGRATED)
POSTCOPY = (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_POSTCOPY)


def _memory_poll(processed: int, remaining: int, iteration: int, dirty_pages: int = 0) -> dict:
    """A jobStats() of a 128 MiB guest's pre-copy, every key libvirt 9.0 sent for it."""
    total = 135012352
    return {
        "type": libvirt.VIR_DOMAIN_JOB_UNBOUNDED,  # libvirt-python's own key: virDomainGetJobStats' type
        libvirt.VIR_DOMAIN_JOB_OPERATION: libvirt.VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT,
        libvirt.VIR_DOMAIN_JOB_TIME_ELAPSED: 2104,
        libvirt.VIR_DOMAIN_JOB_TIME_ELAPSED_NET: 2101,
        libvirt.VIR_DOMAIN_JOB_DOWNTIME: 300,  # QEMU's target in flight, not the real figure
        libvirt.VIR_DOMAIN_JOB_SETUP_TIME: 9,
        libvirt.VIR_DOMAIN_JOB_DATA_TOTAL: total,
        libvirt.VIR_DOMAIN_JOB_DATA_PROCESSED: processed,
        libvirt.VIR_DOMAIN_JOB_DATA_REMAINING: remaining,
        libvirt.VIR_DOMAIN_JOB_MEMORY_TOTAL: total,
        libvirt.VIR_DOMAIN_JOB_MEMORY_PROCESSED: processed,
        libvirt.VIR_DOMAIN_JOB_MEMORY_REMAINING: remaining,
        libvirt.VIR_DOMAIN_JOB_MEMORY_CONSTANT: 21930,
        libvirt.VIR_DOMAIN_JOB_MEMORY_NORMAL: 4123,
        libvirt.VIR_DOMAIN_JOB_MEMORY_NORMAL_BYTES: 16887808,
        libvirt.VIR_DOMAIN_JOB_MEMORY_BPS: 8396800,
        libvirt.VIR_DOMAIN_JOB_MEMORY_DIRTY_RATE: dirty_pages,
        libvirt.VIR_DOMAIN_JOB_MEMORY_PAGE_SIZE: 4096,
        libvirt.VIR_DOMAIN_JOB_MEMORY_ITERATION: iteration,
        libvirt.VIR_DOMAIN_JOB_MEMORY_POSTCOPY_REQS: 0,
    }


def _disk_poll(done: int, total: int) -> dict:
    """A jobStats() while libvirt mirrors the disks (copy storage): data_* counts the disks only."""
    return {
        "type": libvirt.VIR_DOMAIN_JOB_UNBOUNDED,
        libvirt.VIR_DOMAIN_JOB_OPERATION: libvirt.VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT,
        libvirt.VIR_DOMAIN_JOB_TIME_ELAPSED: 812,
        libvirt.VIR_DOMAIN_JOB_DATA_TOTAL: total,
        libvirt.VIR_DOMAIN_JOB_DATA_PROCESSED: done,
        libvirt.VIR_DOMAIN_JOB_DATA_REMAINING: total - done,
        libvirt.VIR_DOMAIN_JOB_DISK_TOTAL: total,
        libvirt.VIR_DOMAIN_JOB_DISK_PROCESSED: done,
        libvirt.VIR_DOMAIN_JOB_DISK_REMAINING: total - done,
    }


def test_a_pass_the_event_told_counts_before_jobstats_shows_it():
    reading = JobProgress("kvm-demo-b")
    assert reading.read(_memory_poll(60 * MiB, 70 * MiB, iteration=1), *RUNNING, 0.0, iteration=2).iteration == 2
    assert reading.read(_memory_poll(70 * MiB, 60 * MiB, iteration=3), *RUNNING, 0.0, iteration=2).iteration == 3


def test_dirty_pages_are_told_in_bytes():
    p = JobProgress("kvm-demo-b").read(_memory_poll(60 * MiB, 70 * MiB, iteration=2, dirty_pages=25), *RUNNING, 0.0)
    assert p.dirty_rate == 25 * 4096
    assert p.fraction == pytest.approx(1 - 70 * MiB / 135012352)


def test_post_copy_the_domain_shows_stays_post_copy():
    reading = JobProgress("kvm-demo-b")
    reading.read(_memory_poll(30 * MiB, 100 * MiB, iteration=1), *RUNNING, 0.0)
    assert not reading.postcopy
    switched = reading.read(_memory_poll(64 * MiB, 64 * MiB, iteration=4), *POSTCOPY, 0.0)
    assert reading.postcopy and not switched.cancellable
    assert switched.message == "post-copy: VM runs on kvm-demo-b, memory follows on demand"
    # the next poll's state says nothing of it: the move is post-copy all the same
    later = reading.read(_memory_poll(90 * MiB, 30 * MiB, iteration=4), *RUNNING, switched.fraction)
    assert not later.cancellable and later.message.startswith("post-copy")


def test_disks_then_memory():
    """jobStats as libvirt 9.0 gave them in the lab: disk_* while the disks are mirrored (data_*
    counting the disks only), then memory_* with data_* over both."""
    reading = JobProgress("kvm-demo-b", disks_first=True)
    reading.memory = 128 * MiB
    disk = _disk_poll(32 * MiB, 64 * MiB)
    p = reading.read(disk, *RUNNING, 0.0)
    assert (p.phase, p.bytes_done, p.bytes_total, p.cancellable) == (
        MigrationPhase.COPYING_STORAGE, 32 * MiB, 64 * MiB, True
    )  # fmt: skip
    assert p.fraction == pytest.approx(32 / 192) and p.message == "disks: 32.0 MiB of 64.0 MiB"
    memory = {
        "type": libvirt.VIR_DOMAIN_JOB_UNBOUNDED,
        libvirt.VIR_DOMAIN_JOB_DISK_TOTAL: 64 * MiB,
        libvirt.VIR_DOMAIN_JOB_DISK_PROCESSED: 64 * MiB,
        libvirt.VIR_DOMAIN_JOB_DISK_REMAINING: 0,
        libvirt.VIR_DOMAIN_JOB_MEMORY_TOTAL: 128 * MiB,
        libvirt.VIR_DOMAIN_JOB_MEMORY_PROCESSED: 32 * MiB,
        libvirt.VIR_DOMAIN_JOB_MEMORY_REMAINING: 96 * MiB,
        libvirt.VIR_DOMAIN_JOB_DATA_TOTAL: 192 * MiB,
        libvirt.VIR_DOMAIN_JOB_DATA_PROCESSED: 96 * MiB,
        libvirt.VIR_DOMAIN_JOB_DATA_REMAINING: 96 * MiB,
    }
    q = reading.read(memory, *RUNNING, p.fraction)
    assert q.phase == MigrationPhase.COPYING and q.fraction == pytest.approx(0.5), q
    # a poll with the disk figures again (a stale answer) does not take the phase back
    r = reading.read(disk, *RUNNING, q.fraction)
    assert r.phase == MigrationPhase.COPYING and r.fraction == pytest.approx(0.5)


def test_a_cancel_during_the_disk_copy_stays_in_the_disk_phase():
    reading = JobProgress("kvm-demo-b", disks_first=True)
    reading.memory = 128 * MiB
    copying = reading.read(_disk_poll(16 * MiB, 64 * MiB), *RUNNING, 0.0)
    after = reading.read(_disk_poll(20 * MiB, 64 * MiB), *RUNNING, copying.fraction, cancelling=True)
    assert after.phase == MigrationPhase.COPYING_STORAGE and not after.cancellable
    assert after.message == "cancelling: waiting for libvirt to stop the job"
