"""Datamodel messages the simulator knows but does not implement, each with the reason. They
answer NOT_IMPLEMENTED [call] (api_errors.ml's not_implemented, "The function is not
implemented") after the parameter count and session checks, as xapi orders its checks.
Each group needs a part of a real host the simulator does not have.

Two further lists answer as xapi itself answers, so they are implemented, not missing:
REMOVED (the datamodel's lifecycle says Removed: gen_server.ml answers MESSAGE_REMOVED []
after the session check) and AS_XAPI (xapi's own handler raises NOT_IMPLEMENTED [name])."""

from __future__ import annotations

from . import datamodel, errors
from .registry import GENERIC, Call, Context

_GROUPS: dict[str, tuple[str, ...]] = {
    "rotating the pool secret needs every member's xapi to take the new one; syncing needs a second pool": (
        "pool.rotate_secret",
        "pool.sync_trusted_certificates_from",
    ),
    "external authentication needs an AD/LDAP domain": (),
    "syncing and applying updates need the repositories' yum metadata; licence files need v6d": (
        "pool.sync_updates",
        "pool.check_update_readiness",
        "host.apply_updates",
        "host.refresh_pack_info",
        "host.license_add",
        "host.license_remove",
    ),
    "joining merges a second pool's database; a new management address needs a listener there": (
        "pool.join",
        "pool.join_force",
        "pool.management_reconfigure",
        "host.management_reconfigure",
        "host.local_management_reconfigure",
        "host.management_disable",
    ),
    "backup_rrds writes rrdd's archives to the master's disk; the simulator's are in memory": ("host.backup_rrds",),
    "blobs need the blob class (not served) and xapi's HTTP /blob store": (),
    "host plugins, extensions, logs and agent control need a real dom0": (
        "host.get_system_status_capabilities",
        "host.syslog_reconfigure",
        "host.sync_data",
        "host.rescan_drivers",
    ),
    "import needs disk streams over HTTP": (
        "VM.import",
        "VM.import_convert",
    ),
    "a database file on dom0's disk, in xapi's own format, is not something the simulator has": (
        "session.create_from_db_file",
    ),
    "the simulator writes no guest data, so there are no changed blocks to list": ("VDI.list_changed_blocks",),
    "VLAN, bond and NIC introduction need the VLAN/Bond classes, which the simulator does not serve": (),
}
NOT_IMPLEMENTED: dict[str, str] = {name: why for why, names in _GROUPS.items() for name in names}

# (Removed, ...) in ocaml/idl/datamodel_host.ml / datamodel_pool.ml at the table's commit
REMOVED: tuple[str, ...] = (
    "host.apply_recommended_guidances",
    "host.license_apply",
    "host.set_cpu_features",
    "host.reset_cpu_features",
    "pool.enable_ssl_legacy",
    "pool.test_archive_target",  # not marked Removed, but its handler raises message_removed (VMPP went)
)
# calls whose xapi handler raises a fixed error: xapi_host.ml / xapi_vm.ml (not_implemented,
# [<the name they give>]), xapi_sr.make (message_deprecated, [])
AS_XAPI: dict[str, tuple[str, ...]] = {
    "host.dmesg_clear": ("NOT_IMPLEMENTED", "dmesg_clear"),
    "host.get_log": ("NOT_IMPLEMENTED", "get_log"),
    "VM.query_services": ("NOT_IMPLEMENTED", "query_services"),
    "SR.make": ("MESSAGE_DEPRECATED",),
}


def generic(cls: str, meth: str) -> Call | None:
    name = f"{cls}.{meth}"
    if cls not in datamodel.classes():
        return None
    if name not in NOT_IMPLEMENTED and name not in REMOVED and name not in AS_XAPI:
        return None
    message = datamodel.messages(cls).get(meth)
    if message is None:
        return None

    def refuse(ctx: Context, *args: object) -> None:
        if name in REMOVED:
            raise errors.XapiError("MESSAGE_REMOVED")
        if name in AS_XAPI:
            raise errors.XapiError(*AS_XAPI[name])
        raise errors.not_implemented(name)

    return Call(name, refuse, tuple(p for _, p in message.params), needs_session=message.session)


GENERIC.append(generic)
