"""Default records: every class's fields with XAPI's names and types.

Python types decide the wire encoding: int -> XAPI int (string over XML-RPC, number over JSON-RPC),
float -> double, bool -> boolean, datetime -> dateTime.iso8601, list -> array, dict -> struct.
Defaults use tuples/frozen values only where shared; records are copy-on-write (see db.py).
"""

from __future__ import annotations

from datetime import datetime, timezone

NULL = "OpaqueRef:NULL"
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
GiB = 1024**3
MiB = 1024**2


def now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


_NAMED = {"name_label": "", "name_description": ""}
_OPS = {"allowed_operations": [], "current_operations": {}}

DEFAULTS: dict[str, dict] = {
    "pool": {
        **_NAMED, "master": NULL, "default_SR": NULL, "suspend_image_SR": NULL, "crash_dump_SR": NULL,
        "other_config": {}, "ha_enabled": False, "ha_configuration": {}, "ha_statefiles": [],
        "ha_host_failures_to_tolerate": 0, "ha_plan_exists_for": 0, "ha_allow_overcommit": False,
        "ha_overcommitted": False, "blobs": {}, "tags": [], "gui_config": {}, "health_check_config": {},
        "wlb_url": "", "wlb_username": "", "wlb_enabled": False, "wlb_verify_cert": False,
        "redo_log_enabled": False, "redo_log_vdi": NULL, "vswitch_controller": "", "restrictions": {},
        "metadata_VDIs": [], "ha_cluster_stack": "xhad", **_OPS, "guest_agent_config": {}, "cpu_info": {},
        "policy_no_vendor_device": False, "live_patching_disabled": False, "igmp_snooping_enabled": False,
        "uefi_certificates": "", "is_psr_pending": False, "tls_verification_enabled": True,
        "repositories": [], "client_certificate_auth_enabled": False, "migration_compression": False,
    },
    "host": {
        **_NAMED, **_OPS, "memory_overhead": 0, "API_version_major": 2, "API_version_minor": 21,
        "API_version_vendor": "XenSource", "API_version_vendor_implementation": {}, "enabled": True,
        "software_version": {}, "other_config": {}, "capabilities": [], "cpu_configuration": {},
        "sched_policy": "credit", "supported_bootloaders": ["pygrub", "eliloader"], "resident_VMs": [],
        "logging": {}, "PIFs": [], "suspend_image_sr": NULL, "crash_dump_sr": NULL, "crashdumps": [],
        "patches": [], "updates": [], "PBDs": [], "host_CPUs": [], "cpu_info": {}, "hostname": "",
        "address": "", "metrics": NULL, "license_params": {}, "ha_statefiles": [], "ha_network_peers": [],
        "blobs": {}, "tags": [], "external_auth_type": "", "external_auth_service_name": "",
        "external_auth_configuration": {}, "edition": "xcp-ng", "license_server": {}, "bios_strings": {},
        "power_on_mode": "", "power_on_config": {}, "local_cache_sr": NULL, "chipset_info": {},
        "PCIs": [], "PGPUs": [], "PUSBs": [], "ssl_legacy": False, "guest_VCPUs_params": {},
        "display": "enabled", "virtual_hardware_platform_versions": [0, 1, 2], "control_domain": NULL,
        "updates_requiring_reboot": [], "features": [], "iscsi_iqn": "", "multipathing": False,
        "uefi_certificates": "", "certificates": [], "editions": ["xcp-ng"], "pending_guidances": [],
        "tls_verification_enabled": True, "last_software_update": EPOCH, "https_only": False,
    },
    "host_metrics": {"memory_total": 0, "memory_free": 0, "live": True, "last_updated": EPOCH, "other_config": {}},
    "SR": {
        **_NAMED, **_OPS, "VDIs": [], "PBDs": [], "virtual_allocation": 0, "physical_utilisation": 0,
        "physical_size": 0, "type": "", "content_type": "", "shared": False, "other_config": {},
        "tags": [], "sm_config": {}, "blobs": {}, "local_cache_enabled": False, "introduced_by": NULL,
        "clustered": False, "is_tools_sr": False,
    },
    "PBD": {"host": NULL, "SR": NULL, "device_config": {}, "currently_attached": True, "other_config": {}},
    "VDI": {
        **_NAMED, **_OPS, "SR": NULL, "VBDs": [], "crash_dumps": [], "virtual_size": 0,
        "physical_utilisation": 0, "type": "user", "sharable": False, "read_only": False, "other_config": {},
        "storage_lock": False, "location": "", "managed": True, "missing": False, "parent": NULL,
        "xenstore_data": {}, "sm_config": {}, "is_a_snapshot": False, "snapshot_of": NULL, "snapshots": [],
        "snapshot_time": EPOCH, "tags": [], "allow_caching": False, "on_boot": "persist",
        "metadata_of_pool": NULL, "metadata_latest": False, "is_tools_iso": False, "cbt_enabled": False,
    },
    "VBD": {
        **_OPS, "VM": NULL, "VDI": NULL, "device": "", "userdevice": "0", "bootable": False, "mode": "RW",
        "type": "Disk", "unpluggable": True, "storage_lock": False, "empty": False, "other_config": {},
        "currently_attached": False, "status_code": 0, "status_detail": "", "runtime_properties": {},
        "qos_algorithm_type": "", "qos_algorithm_params": {}, "qos_supported_algorithms": [], "metrics": NULL,
    },
    "VM": {
        **_NAMED, **_OPS, "power_state": "Halted", "user_version": 1, "is_a_template": False,
        "is_default_template": False, "suspend_VDI": NULL, "resident_on": NULL,
        "scheduled_to_be_resident_on": NULL, "affinity": NULL, "memory_overhead": 0, "memory_target": 0,
        "memory_static_max": 0, "memory_dynamic_max": 0, "memory_dynamic_min": 0, "memory_static_min": 0,
        "VCPUs_params": {}, "VCPUs_max": 1, "VCPUs_at_startup": 1, "actions_after_shutdown": "destroy",
        "actions_after_reboot": "restart", "actions_after_crash": "restart", "consoles": [], "VIFs": [],
        "VBDs": [], "VUSBs": [], "crash_dumps": [], "VTPMs": [], "PV_bootloader": "", "PV_kernel": "",
        "PV_ramdisk": "", "PV_args": "", "PV_bootloader_args": "", "PV_legacy_args": "",
        "HVM_boot_policy": "BIOS order", "HVM_boot_params": {"order": "cd"}, "HVM_shadow_multiplier": 1.0,
        "platform": {}, "PCI_bus": "", "other_config": {}, "domid": -1, "domarch": "",
        "last_boot_CPU_flags": {}, "is_control_domain": False, "metrics": NULL, "guest_metrics": NULL,
        "last_booted_record": "", "recommendations": "", "xenstore_data": {}, "ha_always_run": False,
        "ha_restart_priority": "", "is_a_snapshot": False, "snapshot_of": NULL, "snapshots": [],
        "snapshot_time": EPOCH, "transportable_snapshot_id": "", "blobs": {}, "tags": [],
        "blocked_operations": {}, "snapshot_info": {}, "snapshot_metadata": "", "parent": NULL,
        "children": [], "bios_strings": {}, "protection_policy": NULL, "is_snapshot_from_vmpp": False,
        "snapshot_schedule": NULL, "is_vmss_snapshot": False, "appliance": NULL, "start_delay": 0,
        "shutdown_delay": 0, "order": 0, "VGPUs": [], "attached_PCIs": [], "suspend_SR": NULL, "version": 0,
        "generation_id": "", "hardware_platform_version": 0, "has_vendor_device": False,
        "requires_reboot": False, "reference_label": "", "domain_type": "hvm", "NVRAM": {},
        "pending_guidances": [],
    },
    "VM_metrics": {
        "memory_actual": 0, "VCPUs_number": 0, "VCPUs_utilisation": {}, "VCPUs_CPU": {}, "VCPUs_params": {},
        "VCPUs_flags": {}, "state": [], "start_time": EPOCH, "install_time": EPOCH, "last_updated": EPOCH,
        "other_config": {}, "hvm": True, "nested_virt": False, "nomigrate": False,
        "current_domain_type": "unspecified",
    },
    "VM_guest_metrics": {
        "os_version": {}, "PV_drivers_version": {}, "PV_drivers_up_to_date": True, "memory": {}, "disks": {},
        "networks": {}, "other": {}, "last_updated": EPOCH, "other_config": {}, "live": True,
        "can_use_hotplug_vbd": "yes", "can_use_hotplug_vif": "yes", "PV_drivers_detected": True,
    },
    "VIF": {
        **_OPS, "device": "0", "network": NULL, "VM": NULL, "MAC": "", "MTU": 1500, "other_config": {},
        "currently_attached": False, "status_code": 0, "status_detail": "", "runtime_properties": {},
        "qos_algorithm_type": "", "qos_algorithm_params": {}, "qos_supported_algorithms": [], "metrics": NULL,
        "MAC_autogenerated": True, "locking_mode": "network_default", "ipv4_allowed": [], "ipv6_allowed": [],
        "ipv4_configuration_mode": "None", "ipv4_addresses": [], "ipv4_gateway": "",
        "ipv6_configuration_mode": "None", "ipv6_addresses": [], "ipv6_gateway": "",
    },
    "network": {
        **_NAMED, **_OPS, "VIFs": [], "PIFs": [], "MTU": 1500, "other_config": {}, "bridge": "",
        "managed": True, "blobs": {}, "tags": [], "default_locking_mode": "unlocked", "assigned_ips": {},
        "purpose": [],
    },
    "PIF": {
        "device": "", "network": NULL, "host": NULL, "MAC": "", "MTU": 1500, "VLAN": -1, "metrics": NULL,
        "physical": True, "currently_attached": True, "ip_configuration_mode": "Static", "IP": "",
        "netmask": "255.255.255.0", "gateway": "", "DNS": "", "bond_slave_of": NULL, "bond_master_of": [],
        "VLAN_master_of": NULL, "VLAN_slave_of": [], "management": False, "other_config": {},
        "disallow_unplug": False, "tunnel_access_PIF_of": [], "tunnel_transport_PIF_of": [],
        "ipv6_configuration_mode": "None", "IPv6": [], "ipv6_gateway": "", "primary_address_type": "IPv4",
        "managed": True, "properties": {}, "capabilities": [], "igmp_snooping_status": "unknown",
        "sriov_physical_PIF_of": [], "sriov_logical_PIF_of": [], "PCI": NULL,
    },
    "task": {
        **_NAMED, **_OPS, "created": EPOCH, "finished": EPOCH, "status": "pending", "resident_on": NULL,
        "progress": 0.0, "type": "<none/>", "result": "", "error_info": [], "other_config": {},
        "subtask_of": NULL, "subtasks": [], "backtrace": "()",
    },
}


def new_record(cls: str, **fields: object) -> dict:
    rec = {"uuid": ""}
    rec.update(DEFAULTS[cls])
    unknown = set(fields) - set(rec)
    if unknown:
        raise KeyError(f"{cls} has no field(s) {sorted(unknown)}")
    rec.update(fields)
    return rec


def fields_of(cls: str) -> set[str]:
    return {"uuid", *DEFAULTS[cls]}


def has_name(cls: str) -> bool:
    return "name_label" in DEFAULTS[cls]
