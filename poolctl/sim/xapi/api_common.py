"""The implicit calls every class has, driven by the datamodel table (datamodel.py): get_all,
get_all_records, get_all_records_where, get_record, get_by_uuid, get_by_name_label, and for
every field get_<field>; for every RW field set_<field> (plus add_to_/remove_from_ for maps and
add_/remove_ for sets). Validation and side effects of particular setters are in setters.py."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from . import datamodel, errors, setters
from .db import CLASSES
from .query import compile_where
from .registry import GENERIC, Call, Context
from .schema import Record


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


def _set_field(cls: str, f: datamodel.Field, ctx: Context, ref: str, value: object) -> None:
    setters.set_field(ctx, cls, ref, f, datamodel.coerce(f.type, value, cls, "value"))


def _add_to_map(cls: str, f: datamodel.Field, ctx: Context, ref: str, key: object, value: object) -> None:
    key_ty, value_ty = f.type[1:-5].split(" -> ", 1)
    k = datamodel.coerce(key_ty, key, cls, "key")
    v = datamodel.coerce(value_ty, value, cls, "value")
    with ctx.db.lock:
        rec = ctx.db.get(cls, ref)
        if k in rec[f.name]:
            raise errors.XapiError("MAP_DUPLICATE_KEY", cls, f.name, ref, k)
        setters.set_field(ctx, cls, ref, f, {**rec[f.name], k: v})


def _remove_from_map(cls: str, f: datamodel.Field, ctx: Context, ref: str, key: object) -> None:
    k = datamodel.coerce(f.type[1:-5].split(" -> ", 1)[0], key, cls, "key")
    with ctx.db.lock:
        current = ctx.db.get(cls, ref)[f.name]
        if k in current:
            setters.set_field(ctx, cls, ref, f, {x: y for x, y in current.items() if x != k})


def _add_to_set(cls: str, f: datamodel.Field, ctx: Context, ref: str, value: object) -> None:
    item = datamodel.coerce(f.type[:-4], value, cls, "value")
    with ctx.db.lock:
        current = ctx.db.get(cls, ref)[f.name]
        if item not in current:
            setters.set_field(ctx, cls, ref, f, [*current, item])


def _remove_from_set(cls: str, f: datamodel.Field, ctx: Context, ref: str, value: object) -> None:
    item = datamodel.coerce(f.type[:-4], value, cls, "value")
    with ctx.db.lock:
        current = ctx.db.get(cls, ref)[f.name]
        if item in current:
            setters.set_field(ctx, cls, ref, f, [x for x in current if x != item])


_FIXED: dict[str, Callable[[str], Callable[..., object]]] = {
    "get_all": lambda cls: partial(_get_all, cls),
    "get_all_records": lambda cls: partial(_get_all_records, cls),
    "get_all_records_where": lambda cls: partial(_get_all_records_where, cls),
    "get_record": lambda cls: partial(_get_record, cls),
    "get_by_uuid": lambda cls: partial(_get_by_uuid, cls),
    "get_by_name_label": lambda cls: partial(_get_by_name_label, cls),
}
_EXTRA_PARAMS = {"get_all_records_where": ("expr",)}  # hidden from the docs, so not in the table


def _accessor(cls: str, meth: str) -> Callable[..., object] | None:
    fields = datamodel.field_map(cls)
    makers: tuple[tuple[str, Callable[..., object], str], ...] = (
        ("get_", _get_field, "any"),
        ("set_", _set_field, "rw"),
        ("add_to_", _add_to_map, "map"),
        ("remove_from_", _remove_from_map, "map"),
        ("add_", _add_to_set, "set"),
        ("remove_", _remove_from_set, "set"),
    )
    for prefix, make, kind in makers:
        f = fields.get(meth[len(prefix) :]) if meth.startswith(prefix) else None
        if f is None:
            continue
        if kind == "any":
            return partial(_get_field, cls, f.name)
        writable = f.writable or setters.explicit(cls, f.name)
        if kind == "rw" and writable:
            return partial(make, cls, f)
        if kind == "map" and f.type.endswith(" map") and f.writable:
            return partial(make, cls, f)
        if kind == "set" and f.type.endswith(" set") and f.writable:
            return partial(make, cls, f)
    return None


def generic(cls: str, meth: str) -> Call | None:
    if cls not in CLASSES:
        return None
    name = f"{cls}.{meth}"
    message = datamodel.messages(cls).get(meth)
    fn = _FIXED[meth](cls) if meth in _FIXED else _accessor(cls, meth)
    if fn is None:
        return None
    if meth == "get_by_name_label" and "name_label" not in datamodel.field_map(cls):
        return None
    params = tuple(p for _, p in message.params) if message else _EXTRA_PARAMS.get(meth, ("self",))
    return Call(name, fn, params, async_ok=False)


GENERIC.append(generic)
