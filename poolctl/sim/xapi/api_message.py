"""message.*: the administrator's alerts (xapi_message.ml), e.g. the VM_MIGRATED a migration leaves."""

from __future__ import annotations

from datetime import datetime

from . import errors, messages
from .query import compile_where
from .registry import Context, api
from .schema import Record
from .wire import parse_datetime


def _since(value: object) -> datetime:
    try:
        return parse_datetime(value)
    except ValueError:
        raise errors.field_type_error("since") from None


@api("message.create", "name", "priority", "cls", "obj_uuid", "body")
def create(ctx: Context, name: str, priority: int, cls: str, obj_uuid: str, body: str) -> str:
    db_cls = messages.CLASSES.get(str(cls))
    if db_cls is None:
        # xapi fails unmarshalling an unknown enum value; the simulator names the parameter
        raise errors.XapiError("INVALID_VALUE", "cls", str(cls))
    try:
        ctx.db.by_uuid(db_cls, str(obj_uuid))
    except errors.XapiError:
        raise errors.uuid_invalid(str(cls), str(obj_uuid)) from None
    return ctx.pool.messages.create(str(name), int(priority), str(cls), str(obj_uuid), str(body))


@api("message.destroy", "self")
def destroy(ctx: Context, self: str) -> None:
    ctx.pool.messages.destroy(self)


@api("message.get_all")
def get_all(ctx: Context) -> list[str]:
    return ctx.pool.messages.refs()


@api("message.get_all_records")
def get_all_records(ctx: Context) -> dict[str, Record]:
    return ctx.pool.messages.all_records()


@api("message.get_all_records_where", "expr")
def get_all_records_where(ctx: Context, expr: str) -> dict[str, Record]:
    wanted = compile_where(expr)
    return {ref: rec for ref, rec in ctx.pool.messages.all_records().items() if wanted(rec)}


@api("message.get_since", "since")
def get_since(ctx: Context, since: object) -> dict[str, Record]:
    return ctx.pool.messages.all_records(since=_since(since))


@api("message.get", "cls", "obj_uuid", "since")
def get(ctx: Context, cls: str, obj_uuid: str, since: object) -> dict[str, Record]:
    db_cls = messages.CLASSES.get(str(cls))
    try:
        if db_cls is None:
            raise errors.uuid_invalid(str(cls), str(obj_uuid))
        ctx.db.by_uuid(db_cls, str(obj_uuid))
    except errors.XapiError:
        raise errors.XapiError("UUID_INVALID") from None  # xapi_message.get sends no parameters
    return ctx.pool.messages.all_records(since=_since(since), cls=str(cls), obj_uuid=str(obj_uuid))


@api("message.get_by_uuid", "uuid")
def get_by_uuid(ctx: Context, uuid: str) -> str:
    return ctx.pool.messages.by_uuid(str(uuid))


@api("message.get_record", "self")
def get_record(ctx: Context, self: str) -> Record:
    return ctx.pool.messages.record(self)


@api("message.destroy_all", "filters")
def destroy_all(ctx: Context, filters: object) -> None:
    """xapi_message.destroy_all: every message strictly before `before`, strictly after `after`
    and of `priority`, each filter optional. A filter that does not parse fails the call as
    xapi's Date.of_iso8601 / Int64.of_string exceptions do (INTERNAL_ERROR)."""
    if not isinstance(filters, dict):
        raise errors.field_type_error("filters")
    try:
        before = parse_datetime(filters["before"]) if "before" in filters else None
        after = parse_datetime(filters["after"]) if "after" in filters else None
        priority = int(str(filters["priority"])) if "priority" in filters else None
    except ValueError as exc:
        raise errors.internal_error(f"Invalid_argument: {exc}") from None
    for ref, rec in ctx.pool.messages.all_records().items():
        stamp = rec["timestamp"]
        if before is not None and not stamp < before:
            continue
        if after is not None and not stamp > after:
            continue
        if priority is not None and rec["priority"] != priority:
            continue
        ctx.pool.messages.destroy(ref)
