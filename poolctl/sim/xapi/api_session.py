"""session.*: login (HOST_IS_SLAVE on pool members), logout and the session record's getters."""

from __future__ import annotations

import hmac
from functools import partial

from . import datamodel, errors
from .registry import Context, api
from .schema import Record
from .sessions import track_user_agent


def _authenticate(ctx: Context, uname: str, pwd: str) -> None:
    ok_user = uname == ctx.pool.username
    ok_pwd = hmac.compare_digest(str(pwd).encode(), ctx.pool.password.encode())
    if not (ok_user and ok_pwd):
        raise errors.session_authentication_failed(str(uname))


@api("session.login_with_password", "uname", "pwd", "version", "originator", optional=2, session=False)
def login_with_password(ctx: Context, uname: str, pwd: str, version: str = "", originator: str = "") -> str:
    master = ctx.pool.master
    if ctx.host != master:  # xapi refuses logins on pool members, naming the master
        raise errors.host_is_slave(ctx.db.field("host", master, "address"))
    _authenticate(ctx, uname, pwd)
    session = ctx.pool.sessions.login(str(uname), ctx.host, str(originator))
    _track(ctx)
    return session


@api("session.slave_local_login_with_password", "uname", "pwd", session=False)
def slave_local_login_with_password(ctx: Context, uname: str, pwd: str) -> str:
    _authenticate(ctx, uname, pwd)
    session = ctx.pool.sessions.login(str(uname), ctx.host, "", local=True)
    _track(ctx)
    return session


def _track(ctx: Context) -> None:
    tables: dict[str, dict[str, str]] = ctx.pool.settings.setdefault("user_agents", {})  # type: ignore[assignment]
    track_user_agent(tables.setdefault(ctx.host, {}), ctx.user_agent)


@api("session.logout")
def logout(ctx: Context) -> None:
    ctx.pool.sessions.logout(ctx.session)


@api("session.local_logout")
def local_logout(ctx: Context) -> None:
    ctx.pool.sessions.logout(ctx.session)


@api("session.get_all_subject_identifiers")
def get_all_subject_identifiers(ctx: Context) -> list[str]:
    return []


@api("session.get_record", "self")
def get_record(ctx: Context, self: str) -> Record:
    return ctx.pool.sessions.record(self)


def _getter(name: str, ctx: Context, self: str) -> object:
    return ctx.pool.sessions.record(self)[name]


for _field in (
    "uuid",
    "this_host",
    "this_user",
    "last_active",
    "pool",
    "other_config",
    "is_local_superuser",
    "subject",
    "validation_time",
    "auth_user_sid",
    "auth_user_name",
    "rbac_permissions",
    "tasks",
    "parent",
    "originator",
    "client_certificate",
):
    api(f"session.get_{_field}", "self")(partial(_getter, _field))


def _string_map(value: object, param: str) -> dict[str, str]:
    return datamodel.coerce("(string -> string) map", value, "session", param)  # type: ignore[no-any-return]


@api("session.set_other_config", "self", "value")
def set_other_config(ctx: Context, self: str, value: object) -> None:
    ctx.pool.sessions.set_other_config(self, _string_map(value, "value"))


@api("session.add_to_other_config", "self", "key", "value")
def add_to_other_config(ctx: Context, self: str, key: object, value: object) -> None:
    current = ctx.pool.sessions.record(self)["other_config"]
    new = _string_map({key: value}, "value")
    if set(new) & set(current):
        raise errors.XapiError("MAP_DUPLICATE_KEY", "session", "other_config", self, str(key))
    ctx.pool.sessions.set_other_config(self, {**current, **new})


@api("session.remove_from_other_config", "self", "key")
def remove_from_other_config(ctx: Context, self: str, key: object) -> None:
    current = ctx.pool.sessions.record(self)["other_config"]
    ctx.pool.sessions.set_other_config(self, {k: v for k, v in current.items() if k != key})


@api("session.get_by_uuid", "uuid")
def get_by_uuid(ctx: Context, uuid: str) -> str:
    return ctx.pool.sessions.by_uuid(str(uuid))
