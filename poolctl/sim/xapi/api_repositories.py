"""Update repositories as records (repository.ml, xapi_pool.ml): Repository.introduce / forget /
set_gpgkey_path and the pool's enabled list (pool.add_repository / remove_repository). Syncing
and applying updates need the repositories' yum metadata, which the simulator does not fetch."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from . import datamodel, errors
from .registry import Context, api
from .schema import EPOCH, new_record

_GPGKEY = re.compile(r"[A-Za-z0-9_-]*")


def _assert_url_valid(url: str) -> None:
    """Repository_helpers.assert_url_is_valid with an empty domain allowlist: http(s) and a host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise errors.XapiError("INVALID_BASE_URL", url)


def _assert_gpgkey_path(path: str) -> None:
    if not _GPGKEY.fullmatch(path):
        raise errors.XapiError("INVALID_GPGKEY_PATH", path)


@api("Repository.introduce", "name_label", "name_description", "binary_url", "source_url", "update", "gpgkey_path")
def introduce(
    ctx: Context,
    name_label: str,
    name_description: str,
    binary_url: str,
    source_url: str,
    update: object,
    gpgkey_path: str,
) -> str:
    is_update = datamodel.coerce("bool", update, "Repository", "update")
    for url in (str(binary_url), str(source_url)):
        _assert_url_valid(url)
    _assert_gpgkey_path(str(gpgkey_path))
    db = ctx.db
    with db.lock:
        for ref, rec in db.tables["Repository"].items():
            if rec["name_label"] == name_label or rec["binary_url"] == binary_url:
                raise errors.XapiError("REPOSITORY_ALREADY_EXISTS", ref)
        return db.create(
            "Repository",
            new_record(
                "Repository",
                name_label=str(name_label),
                name_description=str(name_description),
                binary_url=str(binary_url),
                source_url=str(source_url),
                update=is_update,
                gpgkey_path=str(gpgkey_path),
                origin="remote",
            ),
        )


@api("Repository.forget", "self")
def forget(ctx: Context, self: str) -> None:
    db = ctx.db
    with db.lock:
        db.get("Repository", self)
        if self in db.field("pool", db.refs("pool")[0], "repositories"):
            raise errors.XapiError("REPOSITORY_IS_IN_USE")
        db.destroy("Repository", self)


@api("Repository.set_gpgkey_path", "self", "value")
def set_gpgkey_path(ctx: Context, self: str, value: str) -> None:
    _assert_gpgkey_path(str(value))
    ctx.db.set("Repository", self, gpgkey_path=str(value))


def _assert_single_bundle(ctx: Context, repos: list[str]) -> None:
    """xapi_pool.assert_single_repo_can_be_enabled: a bundle or remote_pool repository is the
    only one enabled."""
    origins = {ctx.db.get("Repository", r)["origin"] for r in repos} & {"bundle", "remote_pool"}
    if len(repos) > 1 and origins:
        raise errors.XapiError("REPO_SHOULD_BE_SINGLE_ONE_ENABLED")


@api("pool.add_repository", "self", "value")
def add_repository(ctx: Context, self: str, value: str) -> None:
    db = ctx.db
    with db.lock:
        existing = list(db.field("pool", self, "repositories"))
        db.get("Repository", value)
        if value in existing:
            return
        _assert_single_bundle(ctx, [value, *existing])
        db.set("pool", self, repositories=[*existing, value], last_update_sync=EPOCH)
        db.set("Repository", value, hash="")


@api("pool.remove_repository", "self", "value")
def remove_repository(ctx: Context, self: str, value: str) -> None:
    db = ctx.db
    with db.lock:
        remaining = [r for r in db.field("pool", self, "repositories") if r != value]
        db.set("pool", self, repositories=remaining)
        if not remaining:
            db.set("pool", self, last_update_sync=EPOCH)
