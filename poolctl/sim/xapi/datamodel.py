"""XAPI's datamodel as a table (datamodel.json, derived by scripts/derive_datamodel.py from
xapi-project/xen-api): each class's fields with type, qualifier and default, and its messages.

Records, getters, setters and parameter counts are driven by it, so the simulator answers for
every field and message of the classes it serves as XAPI does.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from . import errors
from .wire import parse_datetime

NULL = "OpaqueRef:NULL"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAP = re.compile(r"\((.+?) -> (.+)\) map")


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    qualifier: str  # "RW", "RO/constructor" (static RO), "RO/runtime" (dynamic RO)
    default: Any

    @property
    def writable(self) -> bool:
        return self.qualifier == "RW"


@dataclass(frozen=True)
class Message:
    name: str
    params: tuple[tuple[str, str], ...]  # (type, name), the session left out
    session: bool
    result: str
    errors: tuple[str, ...]
    implicit: bool


@cache
def _table() -> dict[str, Any]:
    table: dict[str, Any] = json.loads((Path(__file__).parent / "datamodel.json").read_text())
    return table


def source_commit() -> str:
    return str(_table()["source"]["commit"])


def db_tables() -> tuple[str, ...]:
    return tuple(_table()["db_tables"])


def classes() -> tuple[str, ...]:
    return tuple(_table()["classes"])


@cache
def enums(cls: str) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for c in _table()["classes"].values():  # an enum is declared once but used by many classes
        out.update({k: tuple(v) for k, v in c["enums"].items()})
    out.update({k: tuple(v) for k, v in _table()["classes"][cls]["enums"].items()})
    return out


def zero(ty: str, cls: str) -> Any:
    """The value a field of type `ty` holds when the datamodel names no default."""
    if ty.endswith(" set"):
        return []
    if ty.endswith(" map") or ty.endswith(" record"):
        return {}
    if ty.endswith(" ref"):
        return NULL
    if ty.startswith("enum "):
        values = enums(cls).get(ty[5:], ())
        return values[0] if values else ""
    return {"string": "", "int": 0, "float": 0.0, "bool": False, "datetime": EPOCH}[ty]


def _typed_default(f: dict[str, Any], cls: str) -> Any:
    ty, value = f["type"], f.get("default")
    if value is None or (ty.endswith((" set", " map")) and not isinstance(value, (list, dict))):
        return zero(ty, cls)
    if ty == "datetime":
        return EPOCH if str(value).startswith("1970") else datetime.strptime(str(value), "%Y%m%dT%H:%M:%SZ")
    return value


@cache
def fields(cls: str) -> tuple[Field, ...]:
    return tuple(
        Field(f["name"], f["type"], f["qualifier"], _typed_default(f, cls)) for f in _table()["classes"][cls]["fields"]
    )


@cache
def field_map(cls: str) -> dict[str, Field]:
    return {f.name: f for f in fields(cls)}


@cache
def messages(cls: str) -> dict[str, Message]:
    return {
        m["name"]: Message(
            m["name"],
            tuple((p["type"], p["name"]) for p in m["params"]),
            m["session"],
            m["result"],
            tuple(m["errors"]),
            m["implicit"],
        )
        for m in _table()["classes"][cls]["messages"]
    }


# -- values from the wire ----------------------------------------------------------------------
def coerce(ty: str, value: object, cls: str, param: str) -> Any:
    """A parameter of datamodel type `ty` as stored. XAPI reads an int from an XML-RPC string or
    <int>, a float from <double> or an int; anything else of the wrong shape is FIELD_TYPE_ERROR."""
    if ty.endswith(" set"):
        if not isinstance(value, (list, tuple)):
            raise errors.field_type_error(param)
        return [coerce(ty[:-4], v, cls, param) for v in value]
    if m := _MAP.fullmatch(ty):
        if not isinstance(value, dict):
            raise errors.field_type_error(param)
        return {coerce(m.group(1), k, cls, param): coerce(m.group(2), v, cls, param) for k, v in value.items()}
    if ty.startswith("enum "):
        values = enums(cls).get(ty[5:])
        if not isinstance(value, str) or (values is not None and value not in values):
            raise errors.XapiError("INVALID_VALUE", param, str(value))
        return value
    if ty.endswith(" ref"):
        if not isinstance(value, str):
            raise errors.field_type_error(param)
        return value
    if ty == "int":
        if type(value) is int:
            return value
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            return int(value)
        raise errors.field_type_error(param)
    if ty == "float":
        if type(value) in (int, float):
            return float(value)  # type: ignore[arg-type]
        raise errors.field_type_error(param)
    if ty == "bool":
        if type(value) is bool:
            return value
        raise errors.field_type_error(param)
    if ty == "datetime":
        try:
            return parse_datetime(value)
        except ValueError:
            raise errors.field_type_error(param) from None
    if ty == "string":
        if not isinstance(value, str):
            raise errors.field_type_error(param)
        return value
    return value
