"""Storage motion through the Xen backend against the simulator: the capability, the pre-check's
words per disk, XAPI's own errors in words when a map reaches it, and the copy phase named."""

from __future__ import annotations

import pytest

from poolctl.model import MigrationOptions, MigrationPhase
from poolctl.sim.xapi import Simulator
from tests.support.xen import PASSWORD, by_name, connected

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def served():
    sim = Simulator.from_scenario("lab", password=PASSWORD, migration_seconds=0.5, storage_mib_s=30 * 1024)
    with sim.serve(host="127.0.0.1", port=0) as server, connected(server.url) as backend:
        yield sim, backend


def test_the_backend_says_it_can_copy_disks(served):
    _sim, backend = served
    assert backend.capabilities.storage_motion


def test_pre_check_words_per_disk(served):
    _sim, backend = served
    inv = backend.inventory()
    vm, lab2 = by_name(inv, "vm", "cache-01"), by_name(inv, "host", "xcp-lab-2")
    shared = by_name(inv, "sr", "iSCSI storage")
    check = backend.check_storage_migration(vm, lab2, [("*", shared)], 1024.0)
    assert check.ok, check.problems
    assert check.copy_bytes == 30 * 1024**3
    assert check.copies == (
        "disk xvda: 30 GiB from 'Local storage xcp-lab-1' to 'iSCSI storage'",
        "30 GiB in all: about 30 s at 1024 MiB/s",
    )
    left = backend.check_storage_migration(vm, lab2, [], 1024.0)  # an empty map: every disk stays
    assert left.codes == ("VM_REQUIRES_SR",)
    assert left.problems == (
        "disk xvda is on local SR 'Local storage xcp-lab-1', which xcp-lab-2 cannot see: "
        "copy it with --sr SR (every disk) or --disk xvda=SR",
    )


def test_xapis_error_for_an_sr_the_destination_cannot_see_is_in_words(served):
    sim, backend = served
    inv = backend.inventory()
    vm, lab2 = by_name(inv, "vm", "cache-01"), by_name(inv, "host", "xcp-lab-2")
    other = by_name(inv, "sr", "Local storage xcp-lab-3")
    handle = backend.migrate(vm, lab2, MigrationOptions(disk_srs=(("xvda", other),)))  # no pre-check: XAPI's word
    phases = [p.phase for p in handle.updates()]
    assert phases[-1] == MigrationPhase.FAILED
    result = handle.result
    assert result is not None and result.outcome == "failed" and result.refused
    assert result.error.startswith("the destination cannot see SR 'Local storage xcp-lab-3' (it has no attached PBD")
    assert result.host == by_name(inv, "host", "xcp-lab-1")


def test_the_copy_phase_is_disks_then_memory(served):
    sim, backend = served
    inv = backend.inventory()
    vm, lab2 = by_name(inv, "vm", "cache-01"), by_name(inv, "host", "xcp-lab-2")
    shared = by_name(inv, "sr", "iSCSI storage")
    handle = backend.migrate(vm, lab2, MigrationOptions(disk_srs=(("*", shared),)))
    phases = [p.phase for p in handle.updates()]
    assert MigrationPhase.COPYING_STORAGE in phases and MigrationPhase.COPYING not in phases
    assert phases[-1] == MigrationPhase.DONE
    assert handle.result is not None and handle.result.host == lab2
    after = next(v for v in backend.inventory().vms if v.ref == vm)
    assert [d.sr for d in after.disks if not d.cdrom] == [shared]
