"""VM.* calls: power operations, placement checks and live migration."""

from __future__ import annotations

from . import errors, lifecycle, migrate, ops
from .registry import Context, api
from .schema import Record


def _vm(ctx: Context, vm: str) -> str:
    ctx.db.get("VM", vm)
    return vm


def _host(ctx: Context, host: str) -> str:
    ctx.db.get("host", host)
    return host


@api("VM.start", "vm", "start_paused", "force")
def start(ctx: Context, vm: str, start_paused: bool, force: bool) -> None:
    ops.start(ctx.pool, ctx.task, _vm(ctx, vm), None, bool(start_paused))


@api("VM.start_on", "vm", "host", "start_paused", "force")
def start_on(ctx: Context, vm: str, host: str, start_paused: bool, force: bool) -> None:
    ops.start(ctx.pool, ctx.task, _vm(ctx, vm), _host(ctx, host), bool(start_paused), "start_on")


@api("VM.resume", "vm", "start_paused", "force")
def resume(ctx: Context, vm: str, start_paused: bool, force: bool) -> None:
    ops.start(ctx.pool, ctx.task, _vm(ctx, vm), None, bool(start_paused), "resume")


@api("VM.resume_on", "vm", "host", "start_paused", "force")
def resume_on(ctx: Context, vm: str, host: str, start_paused: bool, force: bool) -> None:
    ops.start(ctx.pool, ctx.task, _vm(ctx, vm), _host(ctx, host), bool(start_paused), "resume_on")


@api("VM.clean_shutdown", "vm")
def clean_shutdown(ctx: Context, vm: str) -> None:
    ops.shutdown(ctx.pool, ctx.task, _vm(ctx, vm), "clean_shutdown")


@api("VM.hard_shutdown", "vm")
def hard_shutdown(ctx: Context, vm: str) -> None:
    ops.shutdown(ctx.pool, ctx.task, _vm(ctx, vm), "hard_shutdown")


@api("VM.shutdown", "vm")
def shutdown(ctx: Context, vm: str) -> None:
    """Clean shutdown, falling back to hard shutdown (xapi's VM.shutdown)."""
    vm = _vm(ctx, vm)
    op = "clean_shutdown" if ctx.db.field("VM", vm, "power_state") == "Running" else "hard_shutdown"
    ops.shutdown(ctx.pool, ctx.task, vm, op)


@api("VM.clean_reboot", "vm")
def clean_reboot(ctx: Context, vm: str) -> None:
    ops.reboot(ctx.pool, ctx.task, _vm(ctx, vm), "clean_reboot")


@api("VM.hard_reboot", "vm")
def hard_reboot(ctx: Context, vm: str) -> None:
    ops.reboot(ctx.pool, ctx.task, _vm(ctx, vm), "hard_reboot")


@api("VM.suspend", "vm")
def suspend(ctx: Context, vm: str) -> None:
    ops.suspend(ctx.pool, ctx.task, _vm(ctx, vm))


@api("VM.pause", "vm")
def pause(ctx: Context, vm: str) -> None:
    ops.set_paused(ctx.pool, ctx.task, _vm(ctx, vm), True)


@api("VM.unpause", "vm")
def unpause(ctx: Context, vm: str) -> None:
    ops.set_paused(ctx.pool, ctx.task, _vm(ctx, vm), False)


@api("VM.pool_migrate", "vm", "host", "options")
def pool_migrate(ctx: Context, vm: str, host: str, options: dict[str, str]) -> None:
    if not isinstance(options, dict):
        raise errors.field_type_error("options")
    migrate.pool_migrate(ctx.pool, ctx.task, _vm(ctx, vm), _host(ctx, host), options)


@api("VM.assert_can_boot_here", "self", "host")
def assert_can_boot_here(ctx: Context, self: str, host: str) -> None:
    ops.assert_can_boot_here(ctx.pool, _vm(ctx, self), _host(ctx, host))


@api("VM.get_possible_hosts", "vm")
def get_possible_hosts(ctx: Context, vm: str) -> list[str]:
    vm = _vm(ctx, vm)
    possible = []
    for host in ctx.db.refs("host"):
        try:
            ops.assert_can_boot_here(ctx.pool, vm, host)
            possible.append(host)
        except errors.XapiError:
            pass
    return possible


@api("VM.assert_operation_valid", "self", "op")
def assert_operation_valid(ctx: Context, self: str, op: str) -> None:
    vm = _vm(ctx, self)
    if op not in lifecycle.POWER:
        raise errors.XapiError("INVALID_VALUE", "op", str(op))
    lifecycle.assert_allowed(ctx.db, vm, op)


@api("VM.get_boot_record", "self")
def get_boot_record(ctx: Context, self: str) -> Record:
    return ctx.db.snapshot("VM", self)
