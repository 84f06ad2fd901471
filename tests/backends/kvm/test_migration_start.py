"""The migrate call's flags and parameters (migration_start.py); the lab's moves (tests/lab) send
them to real daemons, the test driver refuses every move before they are used."""

from __future__ import annotations

import libvirt

from poolctl.backends.kvm.migration_start import call_arguments
from poolctl.model import MigrationOptions


def test_a_transient_domain_is_not_made_persistent_on_arrival():
    assert call_arguments(MigrationOptions(), persistent=False) == (libvirt.VIR_MIGRATE_LIVE, {})
    flags, _ = call_arguments(MigrationOptions(), persistent=True)
    assert flags == libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PERSIST_DEST | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE


def test_options_become_flags_and_typed_parameters():
    options = MigrationOptions(live=False, auto_converge=True, post_copy=True, bandwidth_mib_s=32, parallel=4)
    flags, params = call_arguments(options, persistent=False)
    # not live: no VIR_MIGRATE_LIVE
    assert flags == libvirt.VIR_MIGRATE_AUTO_CONVERGE | libvirt.VIR_MIGRATE_POSTCOPY | libvirt.VIR_MIGRATE_PARALLEL
    assert params == {libvirt.VIR_MIGRATE_PARAM_BANDWIDTH: 32, libvirt.VIR_MIGRATE_PARAM_PARALLEL_CONNECTIONS: 4}


def test_one_connection_is_not_a_parallel_move():
    flags, params = call_arguments(MigrationOptions(parallel=1, copy_storage=True, compress=True), persistent=False)
    assert flags == libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_NON_SHARED_DISK | libvirt.VIR_MIGRATE_COMPRESSED
    assert params == {}
