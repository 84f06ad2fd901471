"""Checkpoint/revert, SR and host lifecycle, network settings, and NOT_IMPLEMENTED answers."""

from __future__ import annotations

import pytest
import XenAPI

from .conftest import PASSWORD, vm_named


def failure(call, *args) -> list[str]:
    with pytest.raises(XenAPI.Failure) as exc:
        call(*args)
    return exc.value.details


def test_checkpoint_then_revert_restores_config_and_disks(api):
    vm = vm_named(api, "web-01")
    cp = api.VM.checkpoint(vm, "cp")
    assert api.VM.get_power_state(cp) == "Suspended" and api.VM.get_is_a_snapshot(cp)
    old_disks = {api.VBD.get_VDI(v) for v in api.VM.get_VBDs(vm)}
    api.VM.set_VCPUs_number_live(vm, "1")
    api.VM.revert(cp)
    rec = api.VM.get_record(vm)
    assert rec["power_state"] == "Suspended" and rec["parent"] == cp
    assert rec["VCPUs_at_startup"] == api.VM.get_VCPUs_at_startup(cp)
    new_disks = {api.VBD.get_VDI(v) for v in rec["VBDs"]} - {"OpaqueRef:NULL"}
    assert new_disks and not new_disks & old_disks  # copies of the checkpoint's disks
    assert failure(api.VM.revert, vm) == ["REVERT_ONLY_ALLOWED_ON_SNAPSHOT"]


def test_power_state_reset_and_declare_dead(api):
    host = api.host.get_by_name_label("xcp-lab-3")[0]
    guests = [v for v in api.host.get_resident_VMs(host) if not api.VM.get_is_control_domain(v)]
    assert guests
    api.host.declare_dead(host)
    assert all(api.VM.get_power_state(v) == "Halted" for v in guests)
    assert api.host_metrics.get_live(api.host.get_metrics(host)) is False
    assert failure(api.host.destroy, api.pool.get_master(api.pool.get_all()[0]))[0] == "HOST_CANNOT_DESTROY_SELF"
    api.host.destroy(host)
    assert host not in api.host.get_all() and len(api.host.get_all()) == 2


def test_sr_create_forget_destroy(api):
    host = api.host.get_all()[0]
    sr = api.SR.create(host, {"device": "/dev/sdz"}, str(10 * 2**30), "new", "", "ext", "user", False, {})
    (pbd,) = api.SR.get_PBDs(sr)
    assert api.PBD.get_host(pbd) == host and api.PBD.get_currently_attached(pbd)
    vdi = api.VDI.create({"name_label": "d", "SR": sr, "virtual_size": "1024", "type": "user", "other_config": {}})
    assert failure(api.SR.forget, sr) == ["SR_HAS_PBD", sr]
    assert failure(api.SR.create, host, {}, "0", "x", "", "nosuch", "", False, {}) == ["SR_UNKNOWN_DRIVER", "nosuch"]
    api.SR.destroy(sr)
    assert sr not in api.SR.get_all() and vdi not in api.VDI.get_all() and pbd not in api.PBD.get_all()


def test_vif_and_pif_settings(api):
    vif = api.VM.get_VIFs(vm_named(api, "web-01"))[0]
    api.VIF.configure_ipv4(vif, "Static", "10.0.0.5/24", "10.0.0.1")
    assert api.VIF.get_ipv4_addresses(vif) == ["10.0.0.5/24"] and api.VIF.get_ipv4_gateway(vif) == "10.0.0.1"
    assert failure(api.VIF.configure_ipv4, vif, "Bogus", "", "") == ["INVALID_VALUE", "mode", "Bogus"]
    api.VIF.add_ipv4_allowed(vif, "10.0.0.5")
    assert api.VIF.get_ipv4_allowed(vif) == ["10.0.0.5"]
    api.VIF.remove_ipv4_allowed(vif, "10.0.0.5")
    assert api.VIF.get_ipv4_allowed(vif) == []
    management = next(p for p in api.PIF.get_all() if api.PIF.get_management(p))
    assert failure(api.PIF.unplug, management) == ["PIF_IS_MANAGEMENT_INTERFACE", management]
    api.PIF.reconfigure_ip(management, "Static", "192.0.2.9", "255.255.255.0", "192.0.2.1", "192.0.2.53")
    assert api.PIF.get_IP(management) == "192.0.2.9" and api.PIF.get_DNS(management) == "192.0.2.53"


def test_message_destroy_many_and_change_password(server, api):
    uuid = api.VM.get_uuid(vm_named(api, "web-01"))
    refs = [api.message.create("TEST", "3", "VM", uuid, f"m{i}") for i in range(3)]
    api.message.destroy_many(refs[:2])
    assert set(api.message.get_all()) & set(refs) == {refs[2]}
    assert failure(api.session.change_password, "wrong", "new")[0] == "CHANGE_PASSWORD_REJECTED"
    api.session.change_password(PASSWORD, "n3w-pass")
    s = XenAPI.Session(server.url)
    assert failure(s.login_with_password, "root", PASSWORD)[0] == "SESSION_AUTHENTICATION_FAILED"
    s.login_with_password("root", "n3w-pass")


def test_not_implemented_answers_after_the_count_check(api):
    pool = api.pool.get_all()[0]
    host = api.host.get_all()[0]
    assert failure(api.host.backup_rrds, host, 1.0) == ["NOT_IMPLEMENTED", "host.backup_rrds"]
    assert failure(api.host.backup_rrds, host) == ["MESSAGE_PARAMETER_COUNT_MISMATCH", "host.backup_rrds", "2", "1"]
    # a call the datamodel marks Removed answers MESSAGE_REMOVED, after the count check too
    assert failure(api.pool.enable_ssl_legacy, pool) == ["MESSAGE_REMOVED"]
    assert failure(api.pool.enable_ssl_legacy) == [
        "MESSAGE_PARAMETER_COUNT_MISMATCH",
        "pool.enable_ssl_legacy",
        "1",
        "0",
    ]


def test_local_storage_caching_and_nvram(api):
    host = api.host.get_by_name_label("xcp-lab-1")[0]
    local = api.SR.get_by_name_label("Local storage xcp-lab-1")[0]
    shared = api.SR.get_by_name_label("iSCSI storage")[0]
    assert failure(api.host.enable_local_storage_caching, host, shared) == ["SR_OPERATION_NOT_SUPPORTED", shared]
    api.host.enable_local_storage_caching(host, local)
    assert api.host.get_local_cache_sr(host) == local and api.SR.get_local_cache_enabled(local)
    api.host.disable_local_storage_caching(host)
    assert api.host.get_local_cache_sr(host) == "OpaqueRef:NULL"
    vm = vm_named(api, "test-01")
    api.VM.add_to_NVRAM(vm, "EFI-variables", "AAAA")
    assert api.VM.get_NVRAM(vm) == {"EFI-variables": "AAAA"}
    api.VM.remove_from_NVRAM(vm, "EFI-variables")
    assert api.VM.get_NVRAM(vm) == {}


def test_ssh_timezones_and_newer_setters(api):
    pool = api.pool.get_all()[0]
    hosts = api.host.get_all()
    api.pool.set_ssh_enabled_timeout(pool, "600")
    api.pool.enable_ssh(pool)
    assert all(api.host.get_ssh_enabled(h) and api.host.get_ssh_enabled_timeout(h) == "600" for h in hosts)
    assert failure(api.pool.set_ssh_enabled_timeout, pool, "999999") == ["SET_SSH_TIMEOUT_PARTIALLY_FAILED", *hosts]
    assert failure(api.host.set_ssh_enabled_timeout, hosts[0], "-1") == ["INVALID_VALUE", "ssh_enabled_timeout", "-1"]
    api.host.disable_ssh(hosts[0])
    assert not api.host.get_ssh_enabled(hosts[0])
    assert "Europe/Paris" in api.host.list_timezones(hosts[0])
    api.host.set_timezone(hosts[0], "Europe/Paris")
    assert api.host.get_timezone(hosts[0]) == "Europe/Paris"
    assert failure(api.host.set_timezone, hosts[0], "Mars/Olympus")[0] == "INVALID_VALUE"
    api.host.set_max_cstate(hosts[0], "C1")
    assert api.host.get_max_cstate(hosts[0]) == "C1"
    vif = api.VM.get_VIFs(vm_named(api, "web-01"))[0]
    api.VIF.add_trunks(vif, "20")
    api.VIF.add_trunks(vif, "10")
    assert api.VIF.get_trunks(vif) == ["10", "20"]
    api.VIF.remove_trunks(vif, "20")
    assert api.VIF.get_trunks(vif) == ["10"]
