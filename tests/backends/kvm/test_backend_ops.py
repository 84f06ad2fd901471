"""KVM backend operations on libvirt's test driver: power, pre-checks, migrate, errors."""

from __future__ import annotations

import dataclasses

import pytest

from poolctl.backends.base import ConnectionLost, NotFound, OperationRefused, Unsupported
from poolctl.backends.kvm import KvmBackend
from poolctl.backends.kvm.events import DomainChanged
from poolctl.config import ConfigError, pool_config
from poolctl.model import MigrationOptions, PowerOp, PowerState
from tests.support.kvm_helpers import by_name


def _state(backend, name):
    return by_name(backend.inventory(), name).power_state


def test_power_cycle_through_the_hypervisor(demo):
    ref = by_name(demo.inventory(), "kvm-build-01").ref
    demo.power(ref, PowerOp.START)
    assert _state(demo, "kvm-build-01") == PowerState.RUNNING
    demo.power(ref, PowerOp.REBOOT)
    assert _state(demo, "kvm-build-01") == PowerState.RUNNING
    demo.power(ref, PowerOp.SUSPEND)
    assert _state(demo, "kvm-build-01") == PowerState.SUSPENDED  # managed save (to disk)
    demo.power(ref, PowerOp.RESUME)
    assert _state(demo, "kvm-build-01") == PowerState.RUNNING
    demo.power(ref, PowerOp.SHUTDOWN)
    assert _state(demo, "kvm-build-01") == PowerState.HALTED
    demo.power(ref, PowerOp.START)
    demo.power(ref, PowerOp.FORCE_OFF)
    assert _state(demo, "kvm-build-01") == PowerState.HALTED


def test_resume_unpauses_a_paused_vm_and_restores_a_saved_one(demo):
    inv = demo.inventory()
    demo.power(by_name(inv, "kvm-cache-01").ref, PowerOp.RESUME)
    demo.power(by_name(inv, "kvm-test-01").ref, PowerOp.RESUME)
    assert _state(demo, "kvm-cache-01") == PowerState.RUNNING
    assert _state(demo, "kvm-test-01") == PowerState.RUNNING
    assert by_name(demo.inventory(), "kvm-test-01").host == by_name(inv, "kvm-demo-b").ref


def test_power_errors_name_the_vm_and_host_and_quote_libvirt(demo, capfd):
    inv = demo.inventory()
    web = by_name(inv, "kvm-web-01")
    with pytest.raises(OperationRefused) as exc:
        demo.power(web.ref, PowerOp.START)
    assert "kvm-web-01" in str(exc.value) and "kvm-demo-a" in str(exc.value)
    with pytest.raises(OperationRefused) as exc:
        demo.power(by_name(inv, "kvm-build-01").ref, PowerOp.FORCE_OFF)
    msg = str(exc.value)
    assert msg.startswith("cannot force off VM 'kvm-build-01' on kvm-demo-a: libvirt says: ")
    assert "not running" in msg and exc.value.code == "VIR_ERR_OPERATION_INVALID"
    with pytest.raises(OperationRefused, match="neither paused nor suspended"):
        demo.power(web.ref, PowerOp.RESUME)
    with pytest.raises(NotFound, match="vm:nope"):
        demo.power("vm:nope", PowerOp.START)
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")  # libvirt's default handler would print "libvirt: ... error"


def test_a_vm_undefined_behind_our_back_is_not_found(demo):
    inv = demo.inventory()
    build = by_name(inv, "kvm-build-01")
    demo.host_by_ref(by_name(inv, "kvm-demo-a").ref).conn.lookupByUUIDString(build.uuid).undefine()
    with pytest.raises(NotFound, match="kvm-build-01"):
        demo.power(build.ref, PowerOp.START)


def _check(backend, vm, host):
    inv = backend.inventory()
    return backend.check_migration(by_name(inv, vm).ref, by_name(inv, host).ref)


def test_precheck_not_enough_memory_and_missing_network(demo):
    check = _check(demo, "kvm-db-01", "kvm-demo-b")
    assert not check.ok
    assert "not enough free memory on kvm-demo-b: VM 'kvm-db-01' needs 24.0 GiB, 13.0 GiB free" in check.problems
    assert "network 'backend' (NIC 52:54:00:6b:01:03) does not exist on kvm-demo-b" in check.problems
    assert {"HOST_NOT_ENOUGH_FREE_MEMORY", "NETWORK_MISSING"} <= set(check.codes)
    assert len(check.codes) == len(check.problems)


def test_precheck_disk_on_a_local_pool_suggests_copy_storage(demo):
    check = _check(demo, "kvm-web-02", "kvm-demo-b")
    assert (
        "disk vda on local pool 'default' not visible on kvm-demo-b; copy it with --sr SR (every disk) or --disk vda=SR"
    ) in check.problems
    # shared storage (netfs on both hosts, or listed in shared_storage) is fine
    assert not any("disk" in p for p in _check(demo, "kvm-web-01", "kvm-demo-b").problems)


def test_precheck_missing_bridge_halted_vm_same_host(demo):
    assert (
        "bridge 'br0' (NIC 52:54:00:6b:00:07) does not exist on kvm-demo-a"
        in _check(demo, "kvm-web-03", "kvm-demo-a").problems
    )
    halted = _check(demo, "kvm-build-01", "kvm-demo-b")
    assert any("not running" in p for p in halted.problems)
    assert _check(demo, "kvm-web-01", "kvm-demo-a").problems[-1] == "VM 'kvm-web-01' already runs on kvm-demo-a"


def test_precheck_on_the_test_driver_says_it_cannot_migrate(demo):
    check = _check(demo, "kvm-web-01", "kvm-demo-b")
    # every real pre-check passes; only the driver itself is in the way
    assert check.problems == ("libvirt's test driver cannot migrate: VM 'kvm-web-01' cannot move",)


def test_migrate_on_the_test_driver_is_unsupported_with_the_reason(demo, capfd):
    inv = demo.inventory()
    web = by_name(inv, "kvm-web-01")
    with pytest.raises(Unsupported, match="libvirt's test driver cannot migrate"):
        demo.migrate(web.ref, by_name(inv, "kvm-demo-b").ref, MigrationOptions())
    assert by_name(demo.inventory(), "kvm-web-01").host == web.host  # never a fake move
    assert capfd.readouterr() == ("", "")


def test_unreachable_uri_raises_connection_lost_naming_it(tmp_path, capfd):
    uri = f"qemu+unix:///system?socket={tmp_path}/nobody-listens"
    backend = KvmBackend(pool_config({"name": "gone", "backend": "kvm", "uris": [uri]}))
    with pytest.raises(ConnectionLost) as exc:
        backend.connect()
    assert uri in str(exc.value) and "cannot connect to the local libvirt daemon" in str(exc.value)
    assert "No such file or directory" in str(exc.value) and "check that libvirtd" in str(exc.value)
    backend.close()
    assert capfd.readouterr() == ("", "")


def test_one_unreachable_host_of_two_shows_not_live(tmp_path):
    from poolctl.sim.libvirt import demo_config

    cfg = demo_config(tmp_path, hosts=1)
    dead = f"qemu+unix:///system?socket={tmp_path}/nobody-listens"
    backend = KvmBackend(cfg.model_copy(update={"uris": (*cfg.uris, dead)}))
    backend.connect()
    try:
        hosts = {h.ref: h for h in backend.inventory().hosts}
        assert hosts[f"host:{dead}"].live is False
        assert hosts[f"host:{cfg.uris[0]}"].live is True
    finally:
        backend.close()


def test_config_without_uris_is_refused():
    # the pool's settings refuse it before a backend is built
    for table in ({"name": "empty", "backend": "kvm"}, {"name": "empty", "backend": "kvm", "uris": []}):
        with pytest.raises(ConfigError, match="needs uris"):
            pool_config(table)


def test_auth_callback_gives_credentials_and_reports_a_failing_password_command(capfd):
    import libvirt

    from poolctl.backends.kvm.opening import give_credentials

    creds = [[libvirt.VIR_CRED_AUTHNAME, "user", "", "", None], [libvirt.VIR_CRED_PASSPHRASE, "password", "", "", None]]
    failed: list[str] = []
    asked: set[int] = set()
    assert give_credentials(lambda: ("root", "s3cret"), creds, (failed, asked)) == 0 and failed == []
    assert [c[4] for c in creds] == ["root", "s3cret"]
    # asked again within the same open (the password was refused): no second try, no loop
    again = [[libvirt.VIR_CRED_PASSPHRASE, "password", "", "", None]]
    assert give_credentials(lambda: ("root", "s3cret"), again, (failed, asked)) == -1

    cfg = pool_config({"name": "p", "backend": "kvm", "uris": ["qemu+tcp://kvm1/system"], "password_command": "false"})
    # libvirt then fails the open: open_side() words it
    assert give_credentials(lambda: ("root", cfg.resolve_password()), creds, (failed, set())) == -1
    assert failed == ["pool 'p': password_command exited with 1 (its output is not shown: it may hold the secret)"]
    assert capfd.readouterr() == ("", "")


def test_a_password_inside_a_uri_is_refused_without_repeating_it():
    uri = "qemu+tcp://root:hunter2@kvm1/system"
    for table in (
        {"name": "p", "backend": "kvm", "uris": [uri]},
        {
            "name": "p",
            "backend": "kvm",
            "uris": ["qemu+tcp://kvm1/system"],
            "migration_uris": {"qemu+tcp://kvm1/system": uri},
        },
    ):
        # the pool's settings refuse it before a backend is built
        with pytest.raises(ConfigError) as exc:
            pool_config(table)
        assert "hunter2" not in str(exc.value) and "kvm1" in str(exc.value) and "password" in str(exc.value)


def test_a_power_operation_queues_a_typed_domain_event_for_the_watcher(demo):
    build = by_name(demo.inventory(), "kvm-build-01")
    host = demo.host_by_ref(by_name(demo.inventory(), "kvm-demo-a").ref)
    demo.power(build.ref, PowerOp.START)
    queued = []
    while not demo.queue.empty():
        queued.append(demo.queue.get_nowait())
    # libvirt's own lifecycle events may be there too (they carry event/detail); ours does not.
    assert all(isinstance(e, DomainChanged) and e.uri == host.uri and e.uuid == build.uuid for e in queued)
    assert DomainChanged(host.uri, build.uuid) in queued
    with pytest.raises(dataclasses.FrozenInstanceError):
        queued[0].uuid = "other"
