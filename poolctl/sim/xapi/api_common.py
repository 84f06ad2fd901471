"""Calls every class has, derived from its record: get_all, get_all_records, get_record,
get_by_uuid, get_by_name_label, get_<field>, and setters for the read/write fields clients use."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from . import errors, schema
from .db import CLASSES
from .query import compile_where
from .registry import GENERIC, Call, Context
from .schema import Record

RW_STRING = ("name_label", "name_description")
RW_MAPS = ("other_config", "xenstore_data", "blocked_operations")


def _get_all(cls: str, ctx: Context) -> list[str]:
    return ctx.db.refs(cls)


def _get_all_records(cls: str, ctx: Context) -> dict[str, Record]:
    return ctx.db.all_records(cls)


def _get_record(cls: str, ctx: Context, ref: str) -> Record:
    return ctx.db.snapshot(cls, ref)


def _get_all_records_where(cls: str, ctx: Context, expr: str) -> dict[str, Record]:
    wanted = compile_where(expr)
    with ctx.db.lock:
        return {ref: dict(rec) for ref, rec in ctx.db.tables[cls].items() if wanted(rec)}


def _get_by_uuid(cls: str, ctx: Context, uuid: str) -> str:
    return ctx.db.by_uuid(cls, uuid)


def _get_by_name_label(cls: str, ctx: Context, label: str) -> list[str]:
    return ctx.db.find(cls, lambda rec: rec["name_label"] == label)


def _get_field(cls: str, name: str, ctx: Context, ref: str) -> object:
    return ctx.db.field(cls, ref, name)


def _check_type(name: str, value: object, like: object) -> None:
    if type(value) is not type(like) and not (isinstance(like, list) and isinstance(value, (list, tuple))):
        raise errors.field_type_error(name)


def _set_field(cls: str, name: str, ctx: Context, ref: str, value: object) -> None:
    with ctx.db.lock:
        _check_type(name, value, ctx.db.get(cls, ref)[name])
        ctx.db.set(cls, ref, **{name: list(value) if isinstance(value, tuple) else value})


def _add_to_map(cls: str, name: str, ctx: Context, ref: str, key: str, value: str) -> None:
    with ctx.db.lock:
        if key in ctx.db.get(cls, ref)[name]:
            raise errors.XapiError("MAP_DUPLICATE_KEY", cls, name, ctx.db.get(cls, ref)["uuid"], key)
        ctx.db.set_key(cls, ref, name, str(key), str(value))


def _remove_from_map(cls: str, name: str, ctx: Context, ref: str, key: str) -> None:
    ctx.db.set_key(cls, ref, name, str(key), None)


def _add_tag(cls: str, ctx: Context, ref: str, tag: str) -> None:
    ctx.db.add_to(cls, ref, "tags", str(tag))


def _remove_tag(cls: str, ctx: Context, ref: str, tag: str) -> None:
    ctx.db.remove_from(cls, ref, "tags", str(tag))


def generic(cls: str, meth: str) -> Call | None:
    if cls not in CLASSES:
        return None
    name = f"{cls}.{meth}"
    fields = schema.fields_of(cls)
    fixed: dict[str, tuple[Callable[..., object], tuple[str, ...]]] = {
        "get_all": (partial(_get_all, cls), ()),
        "get_all_records": (partial(_get_all_records, cls), ()),
        "get_all_records_where": (partial(_get_all_records_where, cls), ("expr",)),
        "get_record": (partial(_get_record, cls), ("self",)),
        "get_by_uuid": (partial(_get_by_uuid, cls), ("uuid",)),
    }
    if schema.has_name(cls):
        fixed["get_by_name_label"] = (partial(_get_by_name_label, cls), ("label",))
    if "tags" in fields:
        fixed["add_tags"] = (partial(_add_tag, cls), ("self", "value"))
        fixed["remove_tags"] = (partial(_remove_tag, cls), ("self", "value"))
    if meth in fixed:
        fn, params = fixed[meth]
        return Call(name, fn, params, async_ok=False)
    for prefix, make, params in (
        ("get_", lambda f: partial(_get_field, cls, f), ("self",)),
        ("set_", lambda f: partial(_set_field, cls, f), ("self", "value")),
        ("add_to_", lambda f: partial(_add_to_map, cls, f), ("self", "key", "value")),
        ("remove_from_", lambda f: partial(_remove_from_map, cls, f), ("self", "key")),
    ):
        if not meth.startswith(prefix):
            continue
        f = meth[len(prefix) :]
        writable = f in RW_STRING or f in RW_MAPS or f == "tags"
        if prefix == "get_" and f in fields:
            return Call(name, make(f), params, async_ok=False)
        if prefix == "set_" and f in fields and writable:
            return Call(name, make(f), params, async_ok=False)
        if prefix in ("add_to_", "remove_from_") and f in fields and f in RW_MAPS:
            return Call(name, make(f), params, async_ok=False)
    return None


GENERIC.append(generic)
