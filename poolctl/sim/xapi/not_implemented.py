"""Datamodel messages the simulator knows but does not implement, each with the reason. They
answer NOT_IMPLEMENTED [call] (api_errors.ml's not_implemented, "The function is not
implemented") after the parameter count and session checks, as xapi orders its checks.
Each group needs a part of a real host the simulator does not have."""

from __future__ import annotations

from . import datamodel, errors
from .registry import GENERIC, Call, Context

_GROUPS: dict[str, tuple[str, ...]] = {
    "high availability needs xhad and a statefile; the simulator has neither": (
        "pool.enable_ha",
        "pool.disable_ha",
        "pool.ha_compute_hypothetical_max_host_failures_to_tolerate",
        "pool.ha_compute_max_host_failures_to_tolerate",
        "pool.ha_compute_vm_failover_plan",
        "pool.ha_failover_plan_exists",
        "pool.ha_prevent_restarts_for",
        "host.emergency_ha_disable",
        "SR.assert_can_host_ha_statefile",
        "VM.assert_agile",
    ),
    "Workload Balancing needs a WLB server": (
        "pool.initialize_wlb",
        "pool.deconfigure_wlb",
        "pool.send_wlb_configuration",
        "pool.retrieve_wlb_configuration",
        "pool.retrieve_wlb_recommendations",
        "pool.send_test_post",
        "host.retrieve_wlb_evacuate_recommendations",
        "VM.retrieve_wlb_recommendations",
    ),
    "certificates and TLS settings: the simulator's certificate is made per run, with no store": (
        "pool.certificate_install",
        "pool.certificate_uninstall",
        "pool.certificate_list",
        "pool.certificate_sync",
        "pool.crl_install",
        "pool.crl_uninstall",
        "pool.crl_list",
        "pool.install_ca_certificate",
        "pool.uninstall_ca_certificate",
        "pool.enable_tls_verification",
        "pool.enable_client_certificate_auth",
        "pool.disable_client_certificate_auth",
        "pool.enable_ssl_legacy",
        "pool.disable_ssl_legacy",
        "pool.rotate_secret",
        "pool.sync_trusted_certificates_from",
        "pool.uninstall_trusted_certificate",
        "host.get_server_certificate",
        "host.install_server_certificate",
        "host.reset_server_certificate",
        "host.refresh_server_certificate",
        "host.emergency_reset_server_certificate",
        "host.emergency_disable_tls_verification",
        "host.emergency_reenable_tls_verification",
    ),
    "external authentication needs an AD/LDAP domain": (
        "pool.enable_external_auth",
        "pool.disable_external_auth",
        "pool.detect_nonhomogeneous_external_auth",
        "host.enable_external_auth",
        "host.disable_external_auth",
    ),
    "updates, repositories and licences need update repositories and a licence server": (
        "pool.add_repository",
        "pool.remove_repository",
        "pool.configure_repository_proxy",
        "pool.disable_repository_proxy",
        "pool.configure_update_sync",
        "pool.sync_updates",
        "pool.check_update_readiness",
        "pool.apply_edition",
        "pool.reset_telemetry_uuid",
        "host.apply_updates",
        "host.apply_recommended_guidances",
        "host.emergency_clear_mandatory_guidance",
        "host.refresh_pack_info",
        "host.apply_edition",
        "host.license_add",
        "host.license_apply",
        "host.license_remove",
    ),
    "joining pools and emergency master changes need a second pool and a toolstack restart": (
        "pool.join",
        "pool.join_force",
        "pool.emergency_reset_master",
        "pool.emergency_transition_to_master",
        "pool.recover_slaves",
        "pool.management_reconfigure",
        "host.management_reconfigure",
        "host.local_management_reconfigure",
        "host.management_disable",
    ),
    "performance data sources need rrdd's round-robin databases": (
        "VM.get_data_sources",
        "VM.query_data_source",
        "VM.record_data_source",
        "VM.forget_data_source_archives",
        "host.get_data_sources",
        "host.query_data_source",
        "host.record_data_source",
        "host.forget_data_source_archives",
        "host.backup_rrds",
        "SR.get_data_sources",
        "SR.query_data_source",
        "SR.record_data_source",
        "SR.forget_data_source_archives",
    ),
    "blobs need xapi's blob store (HTTP /blob)": (
        "pool.create_new_blob",
        "host.create_new_blob",
        "VM.create_new_blob",
        "SR.create_new_blob",
        "network.create_new_blob",
    ),
    "host plugins, extensions, logs and agent control need a real dom0": (
        "host.call_plugin",
        "VM.call_plugin",
        "host.call_extension",
        "pool.has_extension",
        "host.dmesg",
        "host.dmesg_clear",
        "host.get_log",
        "host.bugreport_upload",
        "host.get_system_status_capabilities",
        "host.send_debug_keys",
        "host.restart_agent",
        "host.shutdown_agent",
        "host.syslog_reconfigure",
        "host.sync_data",
        "host.power_on",
        "host.set_cpu_features",
        "host.reset_cpu_features",
        "VM.query_services",
        "VM.restart_device_models",
        "VM.call_host_plugin",
        "host.rescan_drivers",
        "host.get_tracked_user_agents",
    ),
    "NTP status and setting the clock need chronyd and a clock of the simulator's own": (
        "host.get_ntp_servers_status",
        "host.get_ntp_synchronized",
        "host.set_servertime",
    ),
    "UEFI secure boot needs varstored and the pool's certificates": (
        "VM.get_secureboot_readiness",
        "VM.set_uefi_mode",
        "VM.update_secureboot_certificates_on_boot",
    ),
    "import needs disk streams over HTTP": (
        "VM.import",
        "VM.import_convert",
    ),
    "disaster recovery needs metadata VDIs written by a pool's database": (
        "VM.recover",
        "VM.assert_can_be_recovered",
        "VM.get_SRs_required_for_recovery",
        "VDI.open_database",
        "VDI.read_database_pool_uuid",
        "SR.enable_database_replication",
        "SR.disable_database_replication",
        "SR.assert_supports_database_replication",
        "session.create_from_db_file",
    ),
    "probing and changed-block tracking need an SM driver and real volumes": (
        "SR.probe",
        "SR.probe_ext",
        "SR.make",
        "VDI.introduce",
        "VDI.list_changed_blocks",
        "VDI.data_destroy",
        "VDI.revert",
    ),
    "message.destroy_all's filter language (xapi_message.ml) is not modelled": ("message.destroy_all",),
    "VM protection policies (VMPP) and their archive targets were removed from xapi": ("pool.test_archive_target",),
    "VLAN, bond and NIC introduction need the VLAN/Bond classes, which the simulator does not serve": (
        "pool.create_VLAN",
        "pool.create_VLAN_from_PIF",
        "PIF.create_VLAN",
        "PIF.introduce",
        "PIF.forget",
        "PIF.destroy",
        "PIF.db_introduce",
        "PIF.db_forget",
    ),
}
NOT_IMPLEMENTED: dict[str, str] = {name: why for why, names in _GROUPS.items() for name in names}


def generic(cls: str, meth: str) -> Call | None:
    name = f"{cls}.{meth}"
    if name not in NOT_IMPLEMENTED or cls not in datamodel.classes():
        return None
    message = datamodel.messages(cls).get(meth)
    if message is None:
        return None

    def refuse(ctx: Context, *args: object) -> None:
        raise errors.not_implemented(name)

    return Call(name, refuse, tuple(p for _, p in message.params), needs_session=message.session)


GENERIC.append(generic)
