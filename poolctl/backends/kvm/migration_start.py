"""Starting a live migration: what refuses it before libvirt is asked (no live migration on
this pool, the same host, a VM not running, a destination not connected), and the migrate
call's flags and parameters built from poolctl's MigrationOptions.

The handle that runs and follows the call: migration.py (copy storage's: copy_storage.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import libvirt

from poolctl.backends.base import Capabilities, OperationRefused, Unsupported
from poolctl.backends.kvm.errors import operation_error
from poolctl.backends.kvm.hostconn import RUNNING_STATES
from poolctl.backends.kvm.merge import Merged
from poolctl.backends.kvm.migration import KvmMigration, MigrationSetup
from poolctl.model import MigrationOptions


def start_migration(
    merged: Merged,
    vm: str,
    host: str,
    options: MigrationOptions,
    caps: Capabilities,
    setup: MigrationSetup,
    handle_type: Callable[..., KvmMigration] | None = None,
) -> KvmMigration:
    """``handle_type``: builds the handle from KvmMigration's arguments (copy storage's has its own)."""
    src, rec = merged.locate(vm)
    dst = merged.host(host)
    name = rec.info.name
    if not caps.live_migration:
        raise Unsupported(f"cannot migrate VM '{name}': {caps.reason}")
    if dst is src:
        raise OperationRefused(f"cannot migrate VM '{name}': it already runs on {dst.name}", host=dst.name)
    if rec.state not in RUNNING_STATES:
        raise OperationRefused(f"cannot migrate VM '{name}': it is not running", host=src.name)
    if not dst.live or dst.conn is None:
        raise OperationRefused(f"cannot migrate VM '{name}': host {dst.name} is not connected", host=dst.name)
    dom = src.domain(rec, "migrate")
    try:
        persistent = bool(dom.isPersistent())
    except libvirt.libvirtError as err:
        raise operation_error("migrate", f"VM '{name}'", src.name, err, alive=src.alive()) from None
    flags, params = call_arguments(options, persistent)
    handle = (handle_type or KvmMigration)(setup, src, dst, rec.info.uuid, name, dom, flags, params, options)
    handle.start()
    return handle


def call_arguments(options: MigrationOptions, persistent: bool) -> tuple[int, dict[str, Any]]:
    """The migrate call's flags and typed parameters for ``options``; ``persistent``: the domain
    is defined on the source, not only running there."""
    flags = libvirt.VIR_MIGRATE_LIVE if options.live else 0
    if persistent:
        # A transient domain stays transient: persisting it on arrival would change what it is.
        flags |= libvirt.VIR_MIGRATE_PERSIST_DEST | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
    if options.auto_converge:
        flags |= libvirt.VIR_MIGRATE_AUTO_CONVERGE
    if options.post_copy:
        flags |= libvirt.VIR_MIGRATE_POSTCOPY
    if options.copy_storage:
        flags |= libvirt.VIR_MIGRATE_NON_SHARED_DISK
    if options.compress:
        flags |= libvirt.VIR_MIGRATE_COMPRESSED
    params: dict[str, Any] = {}
    if options.bandwidth_mib_s:
        params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = int(options.bandwidth_mib_s)
    if options.parallel and options.parallel > 1:
        flags |= libvirt.VIR_MIGRATE_PARALLEL
        params[libvirt.VIR_MIGRATE_PARAM_PARALLEL_CONNECTIONS] = int(options.parallel)
    return flags, params
