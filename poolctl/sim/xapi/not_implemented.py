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
    "no guest writes are simulated, so there is no changed-block bitmap to report": ("VDI.list_changed_blocks",),
    "an import reads an XVA/OVF stream (or a VMware host) the simulator has no producer of: it serves no /export": (
        "VM.import",
        "VM.import_convert",
    ),
    "driver-tool's view of dom0's kernel modules (the Host_driver class is not served)": ("host.rescan_drivers",),
    "copies the host's RRDs, messages and blobs to the master; the simulator keeps a single copy": ("host.sync_data",),
    "rewrites dom0's syslog configuration from host.logging; no syslog runs here": ("host.syslog_reconfigure",),
    "needs the enabled repositories' yum metadata, which the simulator downloads none of": (
        "pool.sync_updates",
        "pool.check_update_readiness",
        "host.apply_updates",
        "host.refresh_pack_info",
    ),
    "licence files are processed by v6d, the licence daemon, which the simulator does not run": (
        "host.license_add",
        "host.license_remove",
    ),
    "writes rrdd's archives to the master's disk; the simulator's stay in memory": ("host.backup_rrds",),
    "joining merges this host into a second pool's database through that pool's master": (
        "pool.join",
        "pool.join_force",
    ),
    "moves the host's API to another address; the simulator's listeners stay where serve() bound them": (
        "pool.management_reconfigure",
        "host.management_reconfigure",
        "host.local_management_reconfigure",
        "host.management_disable",
    ),
    "rotates the secret the members' toolstacks share; the simulator has no intra-pool channel": (
        "pool.rotate_secret",
    ),
    "needs a second pool, reached with its own session and certificate": ("pool.sync_trusted_certificates_from",),
    "opens a database file on dom0's disk in xapi's format, which the simulator has none of": (
        "session.create_from_db_file",
    ),
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
