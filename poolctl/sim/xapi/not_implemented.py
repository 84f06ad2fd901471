"""Datamodel messages the simulator knows but does not implement, each with the reason. They
answer NOT_IMPLEMENTED [call] (api_errors.ml's not_implemented, "The function is not
implemented") after the parameter count and session checks, as xapi orders its checks."""

from __future__ import annotations

from . import datamodel, errors
from .registry import GENERIC, Call, Context

NOT_IMPLEMENTED: dict[str, str] = {}


def _refuse(name: str, ctx: Context, *args: object) -> None:
    raise errors.not_implemented(name)


def generic(cls: str, meth: str) -> Call | None:
    name = f"{cls}.{meth}"
    if name not in NOT_IMPLEMENTED or cls not in datamodel.classes():
        return None
    message = datamodel.messages(cls)[meth]

    def refuse(ctx: Context, *args: object) -> None:
        _refuse(name, ctx, *args)

    return Call(name, refuse, tuple(p for _, p in message.params), needs_session=message.session)


GENERIC.append(generic)
