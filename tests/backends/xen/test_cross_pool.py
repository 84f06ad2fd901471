"""Cross-pool moves through the Xen backend: the `lab` pool's backend linked to the `dr` pool's,
pre-checks in words from both pools' records and XAPI's verdict, the move followed to its end
with the VM then the destination's, the migration network, and no secret of either pool shown."""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack

import pytest

from poolctl.backends.base import OperationRefused, Unsupported
from poolctl.model import MigrationOptions, MigrationPhase
from poolctl.sim.xapi import Simulator
from tests.support.xen import PASSWORD, by_name, connected

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def two():
    lab = Simulator.from_scenario("lab", password=PASSWORD, migration_seconds=0.5, storage_mib_s=30 * 1024)
    dr = Simulator.from_scenario("dr", password=PASSWORD, migration_seconds=0.5)
    with ExitStack() as stack:
        lab_url = stack.enter_context(lab.serve(host="127.0.0.1", port=0)).url
        dr_url = stack.enter_context(dr.serve(host="127.0.0.1", port=0)).url
        src = stack.enter_context(connected(lab_url))
        dst = stack.enter_context(connected(dr_url, name="dr"))
        src.link_pool(dst)
        yield lab, dr, src, dst


def test_the_capability_and_the_link(two):
    _, _, src, dst = two
    assert src.capabilities.cross_pool and src.capabilities.migration_network
    with pytest.raises(Unsupported, match="not linked to itself"):
        src.link_pool(src)
    with pytest.raises(Unsupported, match="pool 'nowhere' is not linked"):
        src.check_move("OpaqueRef:x", "OpaqueRef:y", MigrationOptions(to_pool="nowhere"), 100.0)


def test_pre_check_says_what_is_copied_to_the_other_pool(two):
    _, dr, src, dst = two
    inv, dinv = src.inventory(), dst.inventory()
    sessions = len(dr.sessions)
    vm, dr2 = by_name(inv, "vm", "cache-01"), by_name(dinv, "host", "xcp-dr-2")
    check = src.check_move(vm, dr2, MigrationOptions(to_pool="dr"), 1024.0)  # the dr pool's default SR
    assert check.ok, check.problems
    assert check.copies == (
        "disk xvda: 30 GiB from 'Local storage xcp-lab-1' to 'dr/NFS storage'",
        "30 GiB in all: about 30 s at 1024 MiB/s",
    )
    local = by_name(dinv, "sr", "Local storage xcp-dr-1")
    bad = src.check_move(vm, dr2, MigrationOptions(to_pool="dr", disk_srs=(("*", local),)), 1024.0)
    assert bad.codes == ("SR_NOT_ATTACHED",)
    assert bad.problems == ("xcp-dr-2 cannot see local SR 'dr/Local storage xcp-dr-1' (disk xvda)",)
    big = by_name(inv, "vm", "db-02")  # 16 GiB; xcp-dr-2 has 16 GiB in all
    memory = src.check_move(big, dr2, MigrationOptions(to_pool="dr"), 1024.0)
    assert memory.codes[0] == "HOST_NOT_ENOUGH_FREE_MEMORY"
    assert memory.problems[0].startswith("not enough free memory on xcp-dr-2: needs 16")
    assert len(dr.sessions) == sessions  # each check's migrate_receive session is logged out


def test_a_network_the_destination_host_has_no_pif_on_is_refused_in_words(two):
    _, dr, src, dst = two
    inv, dinv = src.inventory(), dst.inventory()
    vm, dr2 = by_name(inv, "vm", "cache-01"), by_name(dinv, "host", "xcp-dr-2")
    with dr.db.lock:  # xcp-dr-2 loses its PIF on the migration network
        net = by_name(dinv, "network", "Migration network")
        (pif,) = [p for p in dr.db.field("network", net, "PIFs") if dr.db.field("PIF", p, "host") == dr2]
        dr.db.set("network", net, PIFs=[p for p in dr.db.field("network", net, "PIFs") if p != pif])
    check = src.check_move(vm, dr2, MigrationOptions(to_pool="dr", network=net), 1024.0)
    assert check.codes == ("HOST_CANNOT_ATTACH_NETWORK",)
    assert check.problems[0].startswith(
        "xcp-dr-2 has no PIF on network 'dr/Migration network': it cannot receive a migration over it"
    )
    dr1 = by_name(dinv, "host", "xcp-dr-1")  # has a PIF there, without an address
    check = src.check_move(vm, dr1, MigrationOptions(to_pool="dr", network=net), 1024.0)
    assert check.codes == ("PIF_HAS_NO_NETWORK_CONFIGURATION",)
    assert "has no IP address" in check.problems[0]


def test_the_move_leaves_the_pool_and_arrives_in_the_other(two, caplog):
    lab, dr, src, dst = two
    caplog.set_level(logging.DEBUG, logger="poolctl.backends")
    inv, dinv = src.inventory(), dst.inventory()
    vm, dr2 = by_name(inv, "vm", "cache-01"), by_name(dinv, "host", "xcp-dr-2")
    uuid = next(v.uuid for v in inv.vms if v.ref == vm)
    sessions = len(dr.sessions)
    handle = src.migrate(vm, dr2, MigrationOptions(to_pool="dr"))
    updates = list(handle.updates())
    assert updates[-1].phase == MigrationPhase.DONE, updates[-1].message
    assert MigrationPhase.COPYING_STORAGE in {u.phase for u in updates}
    result = handle.result
    assert result is not None and result.outcome == "success" and result.host == dr2
    assert uuid not in {v.uuid for v in src.inventory().vms}
    arrived = next(v for v in dst.inventory().vms if v.uuid == uuid)
    assert arrived.host == dr2 and arrived.power_state.value == "running"
    assert len(dr.sessions) == sessions  # the map's session went with the move's end
    # poolctl's log lines (the simulator's own access log is XAPI's business) show no secret of
    # either pool, the map's session among them (each connector keeps it as a secret)
    text = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("poolctl.backends"))
    assert "migrating cache-01 to xcp-dr-2 of pool dr" in text
    secrets = src.connector._secrets() + dst.connector._secrets()
    assert PASSWORD in secrets and len(secrets) >= 3
    for secret in secrets:
        assert secret not in text


def test_a_refused_move_leaves_the_vm_running_on_the_source(two):
    lab, dr, src, dst = two
    inv, dinv = src.inventory(), dst.inventory()
    vm, dr2 = by_name(inv, "vm", "cache-01"), by_name(dinv, "host", "xcp-dr-2")
    dst.disable_host(dr2)
    handle = src.migrate(vm, dr2, MigrationOptions(to_pool="dr"))
    list(handle.updates())
    result = handle.result
    assert result is not None and result.outcome == "failed"
    assert "xcp-dr-2 is disabled" in result.error
    assert result.host == by_name(inv, "host", "xcp-lab-1")
    assert lab.db.field("VM", vm, "power_state") == "Running"


def test_a_kvm_pool_cannot_be_linked(two):
    _, _, src, _ = two

    class Other:
        NAME = "kvm"

        class config:
            name = "rack"

    with pytest.raises(Unsupported, match="only to another Xen pool"):
        src.link_pool(Other())  # type: ignore[arg-type]
    assert OperationRefused  # the refusals of a move are OperationRefused (see the CLI tests)


def test_a_move_whose_task_is_gone_ended_well_if_the_vm_left_the_pool(two):
    lab, _, src, dst = two
    inv, dinv = src.inventory(), dst.inventory()
    vm, dr2 = by_name(inv, "vm", "web-01"), by_name(dinv, "host", "xcp-dr-2")
    handle = src.migrate(vm, dr2, MigrationOptions(to_pool="dr"))
    deadline = time.monotonic() + 30
    while lab.db.exists("VM", vm):  # not followed yet: the move ends, then XAPI "restarts"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    lab.tasks.destroy(handle._task)
    updates = list(handle.updates())
    assert updates[-1].phase == MigrationPhase.DONE
    assert handle.result is not None and handle.result.outcome == "success" and handle.result.host == dr2
