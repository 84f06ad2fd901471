"""HA, data sources, certificates, TLS, repositories, editions, NTP and secure boot through the
XenAPI SDK: each call's effect in get_record (and events), and XAPI's errors."""

from __future__ import annotations

import base64
import xmlrpc.client
from datetime import UTC, datetime, timedelta

import pytest
import XenAPI

from .conftest import vm_named


def failure(call, *args) -> list[str]:
    with pytest.raises(XenAPI.Failure) as exc:
        call(*args)
    return exc.value.details


def _sr(api, label):
    return next(r for r, rec in api.SR.get_all_records().items() if rec["name_label"] == label)


def _guests(api):
    recs = api.VM.get_all_records()
    return [r for r, rec in recs.items() if not rec["is_a_template"] and not rec["is_control_domain"]]


def test_ha_enable_disable_with_statefile_and_plan(api):
    pool = api.pool.get_all()[0]
    shared, local = _sr(api, "iSCSI storage"), _sr(api, "Local storage xcp-lab-1")
    api.SR.assert_can_host_ha_statefile(shared)
    assert failure(api.SR.assert_can_host_ha_statefile, local) == ["SR_NO_PBDS", local]
    assert failure(api.SR.assert_can_host_ha_statefile, _sr(api, "ISO library"))[0] == "SR_OPERATION_NOT_SUPPORTED"
    cache = vm_named(api, "cache-01")  # its disk is on a host's local SR
    assert failure(api.VM.assert_agile, cache) == ["HA_CONSTRAINT_VIOLATION_SR_NOT_SHARED", local]
    api.VM.assert_agile(vm_named(api, "web-01"))
    assert failure(api.pool.disable_ha) == ["HA_NOT_ENABLED"]
    token = api.event_from(["pool"], "", 0.0)["token"]
    api.pool.enable_ha([], {"timeout": "60"})
    rec = api.pool.get_record(pool)
    assert rec["ha_enabled"] and rec["ha_configuration"] == {"timeout": "60"}
    statefile = rec["ha_statefiles"][0]
    assert api.VDI.get_type(statefile) == "ha_statefile" and api.VDI.get_SR(statefile) == shared
    assert any(api.VDI.get_type(v) == "redo_log" for v in api.SR.get_VDIs(shared))
    hosts = api.host.get_all()
    assert all(len(api.host.get_ha_network_peers(h)) == len(hosts) - 1 for h in hosts)
    events = api.event_from(["pool"], token, 1.0)["events"]
    assert any(e["snapshot"]["ha_enabled"] for e in events)
    assert failure(api.pool.enable_ha, [], {}) == ["HA_IS_ENABLED"]
    # the planner: protect the running guests, then ask how many host failures they survive
    running = [v for v in _guests(api) if api.VM.get_power_state(v) == "Running"]
    for vm in running:
        api.VM.set_ha_restart_priority(vm, "restart")
    n = int(api.pool.ha_compute_max_host_failures_to_tolerate())
    assert 0 <= n < len(hosts)
    assert api.pool.ha_failover_plan_exists(str(n)) is True
    assert api.pool.ha_failover_plan_exists(str(len(hosts))) is False
    assert int(api.pool.ha_compute_hypothetical_max_host_failures_to_tolerate({})) == len(hosts) - 1
    bad = failure(api.pool.ha_compute_hypothetical_max_host_failures_to_tolerate, {running[0]: "always"})
    assert bad == ["INVALID_VALUE", "ha_restart_priority", "always"]
    plan = api.pool.ha_compute_vm_failover_plan([hosts[0]], [running[0], cache])
    assert plan[cache] == {"error_code": "HA_CONSTRAINT_VIOLATION_SR_NOT_SHARED"}
    assert plan[running[0]]["host"] in hosts[1:]
    api.pool.ha_prevent_restarts_for("30")
    # a host leaving HA on its own: its peers stop seeing it
    api.host.emergency_ha_disable(False)
    master = api.pool.get_master(pool)
    assert api.host.get_ha_network_peers(master) == []
    assert all(api.host.get_uuid(master) not in api.host.get_ha_network_peers(h) for h in hosts)
    api.pool.disable_ha()
    rec = api.pool.get_record(pool)
    assert not rec["ha_enabled"] and rec["ha_statefiles"] == []
    assert api.VDI.get_record(statefile)["type"] == "ha_statefile"  # kept for the next enable
    api.host.emergency_ha_disable(True)  # soft, with HA off: nothing to do
    assert failure(api.host.emergency_ha_disable, False) == ["HA_NOT_ENABLED"]


def test_data_sources_of_vm_host_and_sr(api):
    vm = next(v for v in _guests(api) if api.VM.get_power_state(v) == "Running")
    sources = {d["name_label"]: d for d in api.VM.get_data_sources(vm)}
    assert sources["memory"]["enabled"] and sources["memory"]["units"] == "B"
    assert float(api.VM.query_data_source(vm, "memory")) == float(
        api.VM_metrics.get_memory_actual(api.VM.get_metrics(vm))
    )
    assert not sources["cpu_usage"]["enabled"] and not sources["cpu_usage"]["standard"]
    err = failure(api.VM.query_data_source, vm, "cpu_usage")
    assert err[0] == "INTERNAL_ERROR" and "cpu_usage" in err[1]
    api.VM.record_data_source(vm, "cpu_usage")
    assert {d["name_label"]: d for d in api.VM.get_data_sources(vm)}["cpu_usage"]["enabled"]
    assert 0.0 <= api.VM.query_data_source(vm, "cpu_usage") <= 1.0
    api.VM.forget_data_source_archives(vm, "cpu_usage")
    assert failure(api.VM.query_data_source, vm, "cpu_usage")[0] == "INTERNAL_ERROR"
    assert "no_such" in failure(api.VM.record_data_source, vm, "no_such")[1]
    halted = next(v for v in _guests(api) if api.VM.get_power_state(v) == "Halted")
    assert api.VM.get_data_sources(halted) == []
    host = api.host.get_all()[0]
    names = {d["name_label"] for d in api.host.get_data_sources(host)}
    assert {"cpu0", "cpu_avg", "memory_total_kib", "memory_free_kib", "loadavg"} <= names
    total = api.host_metrics.get_memory_total(api.host.get_metrics(host))
    assert api.host.query_data_source(host, "memory_total_kib") == int(total) / 1024
    sr = _sr(api, "iSCSI storage")
    assert api.SR.query_data_source(sr, "size") == float(api.SR.get_physical_size(sr))


def _cert(days_from: int = -1, days_to: int = 30, key=None):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-ca")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + timedelta(days=days_from))
        .not_valid_after(now + timedelta(days=days_to))
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode(), pem_key


def test_certificate_stores_and_server_certificate(api):
    cert, key = _cert()
    api.pool.certificate_install("ca1.pem", cert)
    assert api.pool.certificate_list() == ["ca1.pem"]
    ca = [r for r, rec in api.Certificate.get_all_records().items() if rec["type"] == "ca"]
    assert len(ca) == 1 and api.Certificate.get_name(ca[0]) == "ca1.pem"
    assert api.Certificate.get_host(ca[0]) == "OpaqueRef:NULL"
    assert len(api.Certificate.get_fingerprint_sha256(ca[0]).split(":")) == 32
    assert failure(api.pool.install_ca_certificate, "ca1.pem", cert) == ["CERTIFICATE_ALREADY_EXISTS", "ca1.pem"]
    assert failure(api.pool.certificate_install, "ca2", cert) == ["CERTIFICATE_NAME_INVALID", "ca2"]
    assert failure(api.pool.certificate_install, "bad.pem", "junk") == ["CA_CERTIFICATE_INVALID"]
    expired, _ = _cert(-10, -1)
    assert failure(api.pool.certificate_install, "old.pem", expired)[0] == "CA_CERTIFICATE_EXPIRED"
    api.pool.certificate_uninstall("ca1.pem")
    assert api.pool.certificate_list() == []
    assert failure(api.pool.uninstall_ca_certificate, "ca1.pem") == ["CERTIFICATE_DOES_NOT_EXIST", "ca1.pem"]
    api.pool.crl_install("r.pem", "-----BEGIN X509 CRL-----")
    assert api.pool.crl_list() == ["r.pem"]
    api.pool.crl_uninstall("r.pem")
    assert failure(api.pool.crl_uninstall, "r.pem") == ["CRL_DOES_NOT_EXIST", "r.pem"]
    api.pool.certificate_sync()
    host = api.host.get_all()[0]
    first = api.host.get_server_certificate(host)
    assert first.startswith("-----BEGIN CERTIFICATE-----") and api.host.get_server_certificate(host) == first
    own = {api.Certificate.get_type(c): c for c in api.host.get_certificates(host)}
    assert set(own) == {"host", "host_internal"} and api.Certificate.get_host(own["host"]) == host
    api.host.install_server_certificate(host, cert, key, "")
    assert api.host.get_server_certificate(host) == cert
    now_own = {api.Certificate.get_type(c): c for c in api.host.get_certificates(host)}
    assert now_own["host"] != own["host"] and now_own["host_internal"] == own["host_internal"]
    assert failure(api.Certificate.get_record, own["host"])[0] == "HANDLE_INVALID"
    api.host.refresh_server_certificate(host)
    assert {api.Certificate.get_type(c): c for c in api.host.get_certificates(host)}["host_internal"] != (
        own["host_internal"]
    )
    pool = api.pool.get_all()[0]
    assert failure(api.pool.uninstall_trusted_certificate, pool, now_own["host"]) == [
        "NOT_TRUSTED_CERTIFICATE",
        now_own["host"],
    ]
    api.pool.install_ca_certificate("ca3.pem", cert)
    ca3 = next(r for r, rec in api.Certificate.get_all_records().items() if rec["name"] == "ca3.pem")
    api.pool.uninstall_trusted_certificate(pool, ca3)
    assert api.pool.certificate_list() == []
    _, other_key = _cert()
    assert failure(api.host.install_server_certificate, host, cert, other_key, "") == [
        "SERVER_CERTIFICATE_KEY_MISMATCH"
    ]
    assert failure(api.host.install_server_certificate, host, cert, "junk", "") == ["SERVER_CERTIFICATE_KEY_INVALID"]
    api.host.reset_server_certificate(host)
    assert api.host.get_server_certificate(host) not in (cert, first)


def test_tls_and_client_certificate_switches(api):
    pool = api.pool.get_all()[0]
    master = api.pool.get_master(pool)
    api.host.emergency_disable_tls_verification()
    assert api.host.get_tls_verification_enabled(master) is False
    api.host.emergency_reenable_tls_verification()
    assert api.host.get_tls_verification_enabled(master) is True
    api.pool.enable_tls_verification()
    assert api.pool.get_tls_verification_enabled(pool) and api.pool.get_wlb_verify_cert(pool)
    api.pool.enable_client_certificate_auth(pool, "admin")
    rec = api.pool.get_record(pool)
    assert rec["client_certificate_auth_enabled"] and rec["client_certificate_auth_name"] == "admin"
    api.pool.disable_client_certificate_auth(pool)
    assert not api.pool.get_client_certificate_auth_enabled(pool)
    assert failure(api.pool.enable_ssl_legacy, pool) == ["MESSAGE_REMOVED"]
    api.pool.disable_ssl_legacy(pool)
    assert failure(api.host.dmesg_clear, master) == ["NOT_IMPLEMENTED", "dmesg_clear"]  # as xapi_host.ml


def test_repository_proxy_update_sync_telemetry_editions(api):
    pool = api.pool.get_all()[0]
    assert failure(api.pool.configure_repository_proxy, pool, "ftp://p", "", "") == [
        "INVALID_REPOSITORY_PROXY_URL",
        "ftp://p",
    ]
    assert failure(api.pool.configure_repository_proxy, pool, "http://p:3128", "u", "")[0] == (
        "INVALID_REPOSITORY_PROXY_CREDENTIAL"
    )
    api.pool.configure_repository_proxy(pool, "http://p:3128", "u", "pw")
    rec = api.pool.get_record(pool)
    assert rec["repository_proxy_url"] == "http://p:3128" and rec["repository_proxy_username"] == "u"
    assert rec["repository_proxy_password"] != "OpaqueRef:NULL" and "pw" not in str(rec)
    assert api.secret.get_value(rec["repository_proxy_password"]) == "pw"
    api.pool.disable_repository_proxy(pool)
    assert api.pool.get_repository_proxy_password(pool) == "OpaqueRef:NULL"
    assert rec["repository_proxy_password"] not in api.secret.get_all()  # xapi destroys the old secret
    mine = api.secret.create({"value": "s3", "other_config": {"purpose": "test"}})
    assert api.secret.get_record(mine)["value"] == "s3"
    api.secret.destroy(mine)
    assert failure(api.secret.destroy, mine)[0] == "HANDLE_INVALID"
    assert failure(api.pool.configure_update_sync, pool, "weekly", "7") == ["INVALID_UPDATE_SYNC_DAY", "7"]
    api.pool.configure_update_sync(pool, "weekly", "3")
    assert api.pool.get_update_sync_day(pool) == "3"
    api.pool.configure_update_sync(pool, "daily", "5")
    assert (api.pool.get_update_sync_frequency(pool), api.pool.get_update_sync_day(pool)) == ("daily", "0")
    before = api.pool.get_telemetry_uuid(pool)
    api.pool.reset_telemetry_uuid(pool)
    telemetry = api.pool.get_telemetry_uuid(pool)
    assert telemetry not in (before, "OpaqueRef:NULL") and len(api.secret.get_value(telemetry)) == 36
    host = api.host.get_all()[0]
    assert failure(api.pool.apply_edition, pool, "enterprise") == ["INVALID_EDITION", "enterprise"]
    edition = api.host.get_editions(host)[0]
    api.pool.apply_edition(pool, edition)
    assert all(api.host.get_edition(h) == edition for h in api.host.get_all())
    api.host.emergency_clear_mandatory_guidance()
    assert api.host.get_pending_guidances(api.pool.get_master(pool)) == []


def test_ntp_clock_and_power_on(api):
    host = api.host.get_all()[0]
    status = api.host.get_ntp_servers_status(host)
    assert api.host.get_ntp_synchronized(host) is True and "synced" in status.values()
    when = xmlrpc.client.DateTime("20300101T00:00:00Z")
    assert failure(api.host.set_servertime, host, when) == ["NOT_ALLOWED_WHEN_NTP_IS_ENABLED", host]
    api.host.set_ntp_mode(host, "Disabled")
    assert api.host.get_ntp_servers_status(host) == {} and api.host.get_ntp_synchronized(host) is False
    api.host.set_servertime(host, when)
    assert str(api.host.get_servertime(host)).startswith("2030")
    member = [h for h in api.host.get_all() if h != api.pool.get_master(api.pool.get_all()[0])][0]
    assert failure(api.host.power_on, member) == ["INTERNAL_ERROR", "The host failed to power on."]


def test_secure_boot_readiness_and_mode(api):
    vm = next(v for v in _guests(api) if api.VM.get_power_state(v) == "Halted")
    assert api.VM.get_secureboot_readiness(vm) == "not_supported"
    api.VM.set_HVM_boot_params(vm, {"firmware": "uefi"})
    assert api.VM.get_secureboot_readiness(vm) == "disabled"
    api.VM.add_to_platform(vm, "secureboot", "true")
    assert api.VM.get_secureboot_readiness(vm) == "first_boot"
    assert api.VM.set_uefi_mode(vm, "setup") == ""
    assert api.VM.get_secureboot_readiness(vm) == "setup_mode"
    api.VM.set_uefi_mode(vm, "user")
    assert api.VM.get_secureboot_readiness(vm) == "ready"
    assert base64.b64decode(api.VM.get_NVRAM(vm)["EFI-variables"]).split()[0] == b"PK"
    err = failure(api.VM.update_secureboot_certificates_on_boot, vm, True)
    assert err[0] == "OPERATION_NOT_ALLOWED"


def test_lab_iscsi_sr_reads_as_xapi_reports_an_lvmoiscsi_sr(api):
    sr = _sr(api, "iSCSI storage")
    rec = api.SR.get_record(sr)
    assert rec["type"] == "lvmoiscsi" and rec["shared"]
    scsi_id = "360000000000000000e00000000010001"
    assert rec["sm_config"] == {
        "allocation": "thick",
        "use_vhd": "true",
        "devserial": f"scsi-{scsi_id}",
        "multipathable": "true",
    }
    assert len(rec["PBDs"]) == len(api.host.get_all())
    for pbd in rec["PBDs"]:
        p = api.PBD.get_record(pbd)
        assert p["device_config"] == {
            "target": "iscsi.lab.local",
            "port": "3260",
            "targetIQN": "iqn.2024-01.local.lab:storage",
            "SCSIid": scsi_id,
        }
        assert p["currently_attached"] and p["other_config"] == {"iscsi_sessions": "1"}
        iqn = api.host.get_iscsi_iqn(p["host"])
        assert iqn.startswith("iqn.") and api.host.get_other_config(p["host"])["iscsi_iqn"] == iqn
    pbd = rec["PBDs"][0]
    vms_there = [v for v in _guests(api) if api.VM.get_resident_on(v) == api.PBD.get_host(pbd)]
    for vm in vms_there:
        api.VM.hard_shutdown(vm)
    api.PBD.unplug(pbd)
    assert "iscsi_sessions" not in api.PBD.get_other_config(pbd)
    api.PBD.plug(pbd)
    assert api.PBD.get_other_config(pbd) == {"iscsi_sessions": "1"}


def test_external_auth_pam_enables_ad_fails_at_the_domain_lookup(api):
    pool = api.pool.get_all()[0]
    hosts = api.host.get_all()
    assert failure(api.pool.enable_external_auth, pool, {}, "x", "LDAP") == ["AUTH_UNKNOWN_TYPE", "LDAP"]
    assert failure(api.pool.enable_external_auth, pool, {}, "lab.example", "AD") == [
        "POOL_AUTH_ENABLE_FAILED",
        api.pool.get_master(pool),
        "enable requires user",
    ]
    err = failure(api.pool.enable_external_auth, pool, {"user": "adm@lab.example", "pass": "pw"}, "lab.example", "AD")
    assert err[0] == "POOL_AUTH_ENABLE_FAILED_DOMAIN_LOOKUP_FAILED" and "lab.example" in err[2]
    assert all(api.host.get_external_auth_type(h) == "" for h in hosts)  # rolled back
    api.pool.enable_external_auth(pool, {}, "local", "PAM")
    assert all(api.host.get_external_auth_type(h) == "PAM" for h in hosts)
    assert all(api.host.get_external_auth_service_name(h) == "local" for h in hosts)
    assert failure(api.pool.enable_external_auth, pool, {}, "local", "PAM")[0] == "POOL_AUTH_ALREADY_ENABLED"
    assert failure(api.host.enable_external_auth, hosts[0], {}, "local", "PAM") == [
        "AUTH_ALREADY_ENABLED",
        "PAM",
        "local",
    ]
    assert not [m for m in api.message.get_all_records().values() if m["name"] == "EXTAUTH_IN_POOL_IS_NON_HOMOGENEOUS"]
    member = next(h for h in hosts if h != api.pool.get_master(pool))
    api.host.disable_external_auth(member, {})
    alerts = [m for m in api.message.get_all_records().values() if m["name"] == "EXTAUTH_IN_POOL_IS_NON_HOMOGENEOUS"]
    assert [m["obj_uuid"] for m in alerts] == [api.host.get_uuid(member)] and alerts[0]["priority"] == "2"
    api.pool.disable_external_auth(pool, {})
    assert all(api.host.get_external_auth_type(h) == "" for h in hosts)
    api.host.disable_external_auth(member, {})  # already disabled: nothing to do, no error
    api.pool.detect_nonhomogeneous_external_auth(pool)


def test_repositories_introduced_enabled_and_forgotten(api):
    pool = api.pool.get_all()[0]
    base = "https://updates.example.org/8.3/base"
    repo = api.Repository.introduce("base", "XCP-ng base", base, base + "/src", False, "")
    rec = api.Repository.get_record(repo)
    assert rec["binary_url"] == base and rec["origin"] == "remote" and rec["update"] is False
    assert failure(api.Repository.introduce, "base", "", base + "2", base, False, "") == [
        "REPOSITORY_ALREADY_EXISTS",
        repo,
    ]
    assert failure(api.Repository.introduce, "x", "", "ftp://host/x", base, False, "") == [
        "INVALID_BASE_URL",
        "ftp://host/x",
    ]
    assert failure(api.Repository.set_gpgkey_path, repo, "../etc/passwd")[0] == "INVALID_GPGKEY_PATH"
    api.Repository.set_gpgkey_path(repo, "RPM-GPG-KEY-xcpng")
    api.pool.add_repository(pool, repo)
    assert api.pool.get_repositories(pool) == [repo]
    assert failure(api.Repository.forget, repo) == ["REPOSITORY_IS_IN_USE"]
    api.pool.remove_repository(pool, repo)
    assert api.pool.get_repositories(pool) == []
    api.Repository.forget(repo)
    assert api.Repository.get_all() == []


def test_message_destroy_all_filters(api):
    vm_uuid = api.VM.get_uuid(vm_named(api, "web-01"))
    low = api.message.create("LOW", "5", "VM", vm_uuid, "a")
    high = api.message.create("HIGH", "1", "VM", vm_uuid, "b")
    api.message.destroy_all({"priority": "5"})
    left = api.message.get_all()
    assert low not in left and high in left
    api.message.destroy_all({"after": "20300101T00:00:00Z"})  # none is that new
    assert high in api.message.get_all()
    assert failure(api.message.destroy_all, {"priority": "high"})[0] == "INTERNAL_ERROR"
    api.message.destroy_all({})
    assert api.message.get_all() == []
    pool = api.pool.get_all()[0]
    assert failure(api.pool.test_archive_target, pool, {}) == ["MESSAGE_REMOVED"]


def test_database_replication_to_a_shared_sr(api):
    pool = api.pool.get_all()[0]
    shared, local = _sr(api, "iSCSI storage"), _sr(api, "Local storage xcp-lab-1")
    assert failure(api.SR.assert_supports_database_replication, local) == ["SR_NO_PBDS", local]
    assert failure(api.SR.enable_database_replication, _sr(api, "ISO library"))[0] == "SR_OPERATION_NOT_SUPPORTED"
    api.SR.assert_supports_database_replication(shared)
    api.SR.enable_database_replication(shared)
    [vdi] = api.pool.get_metadata_VDIs(pool)
    rec = api.VDI.get_record(vdi)
    assert rec["type"] == "metadata" and rec["SR"] == shared and rec["metadata_of_pool"] == pool
    assert rec["metadata_latest"] is True and rec["name_label"] == "Metadata for DR"
    [vbd] = rec["VBDs"]
    dom0 = api.host.get_control_domain(api.pool.get_master(pool))
    assert api.VBD.get_VM(vbd) == dom0 and api.VBD.get_currently_attached(vbd)
    assert api.VDI.read_database_pool_uuid(vdi) == api.pool.get_uuid(pool)
    api.SR.enable_database_replication(shared)  # already replicating there: nothing new
    assert api.pool.get_metadata_VDIs(pool) == [vdi]
    api.SR.disable_database_replication(shared)
    assert api.pool.get_metadata_VDIs(pool) == [] and vbd not in api.VM.get_VBDs(dom0)
    assert failure(api.VDI.get_record, vdi)[0] == "HANDLE_INVALID"
    plain = api.SR.get_VDIs(shared)[0]
    assert api.VDI.read_database_pool_uuid(plain) == ""


def test_recover_a_destroyed_vm_from_the_replicated_database(server, session, api):
    pool = api.pool.get_all()[0]
    shared = _sr(api, "iSCSI storage")
    api.SR.enable_database_replication(shared)
    [meta] = api.pool.get_metadata_VDIs(pool)
    vm = next(v for v in _guests(api) if api.VM.get_power_state(v) == "Halted" and api.VM.get_VBDs(v))
    before = api.VM.get_record(vm)
    disks = sorted(api.VBD.get_VDI(b) for b in before["VBDs"])
    dr = api.VDI.open_database(meta)  # the database as the metadata VDI holds it, VM included
    api.VM.destroy(vm)  # the VM is lost; its disks stay on the SR
    foreign = XenAPI.Session(server.url)
    foreign._session = dr
    fx = foreign.xenapi
    assert fx.VM.get_name_label(vm) == before["name_label"]  # read from the opened database
    assert failure(fx.VM.set_name_label, vm, "x")[0] == "RBAC_PERMISSION_DENIED"
    local = session._session
    assert fx.VM.get_SRs_required_for_recovery(vm, local) == []
    fx.VM.assert_can_be_recovered(vm, local)
    assert failure(fx.VM.recover, vm, dr, False)[0] == "RBAC_PERMISSION_DENIED"
    fx.VM.recover(vm, local, False)
    back = api.VM.get_by_uuid(before["uuid"])
    rec = api.VM.get_record(back)
    assert rec["name_label"] == before["name_label"] and rec["power_state"] == "Halted"
    assert sorted(api.VBD.get_VDI(b) for b in rec["VBDs"]) == disks
    assert len(rec["VIFs"]) == len(before["VIFs"])
    # recovering again: the VM is there and no older: refused unless forced
    assert failure(fx.VM.recover, vm, local, False)[0] == "VM_TO_IMPORT_IS_NOT_NEWER_VERSION"
    fx.VM.recover(vm, local, True)
    assert api.VM.get_by_uuid(before["uuid"]) != back  # replaced
    # an SR the pool has lost is named, as its ref in the opened database
    assert failure(api.PBD.unplug, api.SR.get_PBDs(shared)[0])[0] == "VDI_IN_USE"  # the redo log's VBD
    api.SR.disable_database_replication(shared)
    for pbd in api.SR.get_PBDs(shared):
        for v in _guests(api):
            if api.VM.get_power_state(v) != "Halted" and api.VM.get_resident_on(v) == api.PBD.get_host(pbd):
                api.VM.hard_shutdown(v)
        api.PBD.unplug(pbd)
    assert fx.VM.get_SRs_required_for_recovery(vm, local) == [shared]
    assert failure(fx.VM.assert_can_be_recovered, vm, local) == ["VM_REQUIRES_SR", vm, shared]
    assert failure(api.VDI.open_database, api.SR.get_VDIs(_sr(api, "Local storage xcp-lab-1"))[0])[0] == (
        "COULD_NOT_IMPORT_DATABASE"
    )


def test_restart_device_models_is_a_local_live_migration(api):
    vm = vm_named(api, "web-01")
    host, domid = api.VM.get_resident_on(vm), api.VM.get_domid(vm)
    api.VM.restart_device_models(vm)
    assert api.VM.get_resident_on(vm) == host and api.VM.get_domid(vm) != domid
    assert api.VM.get_power_state(vm) == "Running"
    halted = next(v for v in _guests(api) if api.VM.get_power_state(v) == "Halted")
    assert failure(api.VM.restart_device_models, halted) == ["VM_BAD_POWER_STATE", halted, "running", "halted"]
