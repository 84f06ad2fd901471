"""host.migrate_receive, VM.assert_can_migrate, VM.migrate_send and VDI.pool_migrate: storage
motion within the pool (storage_motion.py) or to another pool (cross_pool.py). vgpu_map, the
newest parameter, may be left out as clients older than it do."""

from __future__ import annotations

from . import cross_pool, errors, storage_motion
from .registry import Context, api


def _options(options: object) -> dict[str, object]:
    if not isinstance(options, dict):
        raise errors.field_type_error("options")
    return options


def _map(value: object, name: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise errors.field_type_error(name)
    return {str(k): str(v) for k, v in value.items()}


@api("host.migrate_receive", "host", "network", "options")
def migrate_receive(ctx: Context, host: str, network: str, options: object) -> dict[str, str]:
    _options(options)
    return storage_motion.migrate_receive(ctx.pool, ctx.session, host, network)


@api("VM.assert_can_migrate", "vm", "dest", "live", "vdi_map", "vif_map", "options", "vgpu_map", optional=1)
def assert_can_migrate(
    ctx: Context,
    vm: str,
    dest: object,
    live: bool,
    vdi_map: object,
    vif_map: object,
    options: object,
    vgpu_map: object = None,
) -> None:
    opts = _options(options)
    remote = storage_motion.remote_of(ctx.pool, dest)
    if remote is None:
        storage_motion.assert_can_migrate(ctx.pool, vm, dest, vdi_map, vif_map, opts)
        return
    ctx.db.get("VM", vm)
    cross_pool.assert_can_migrate(ctx.pool, vm, remote, _map(vdi_map, "vdi_map"), _map(vif_map, "vif_map"))


@api("VM.migrate_send", "vm", "dest", "live", "vdi_map", "vif_map", "options", "vgpu_map", optional=1)
def migrate_send(
    ctx: Context,
    vm: str,
    dest: object,
    live: bool,
    vdi_map: object,
    vif_map: object,
    options: object,
    vgpu_map: object = None,
) -> str:
    ctx.db.get("VM", vm)
    opts = _options(options)
    remote = storage_motion.remote_of(ctx.pool, dest)
    if remote is None:
        return storage_motion.migrate_send(ctx.pool, ctx.task, vm, dest, bool(live), vdi_map, vif_map, opts)
    return cross_pool.migrate_send(ctx.pool, ctx.task, vm, remote, _map(vdi_map, "vdi_map"), _map(vif_map, "vif_map"))


@api("VDI.pool_migrate", "vdi", "sr", "options")
def vdi_pool_migrate(ctx: Context, vdi: str, sr: str, options: object) -> str:
    return storage_motion.vdi_pool_migrate(ctx.pool, ctx.task, vdi, sr, _options(options))
