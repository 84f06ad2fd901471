"""Pool configuration: what a backend needs to reach one pool.

The file loader (``load_config``: TOML, validated here) turns ``[[pool]]`` tables into
``PoolConfig``, ``[keys]`` into a key map for the TUI and ``[migration]`` into the defaults
of the migrate dialog and of ``poolctl migrate``::

    [keys]                      # binding id (press ? in the TUI) = key(s)
    "vm.force_off" = "ctrl+k"

    [migration]                 # optional; both keys optional
    ping_interval = 0.1         # seconds between pings while a VM moves: 0.001 to 10
    ping_port = 22              # probe this TCP port where ICMP is not permitted (default: none)

    [[pool]]                    # one table per pool
    name = "lab"
    backend = "xen"
    url = "https://xcp-master.example"
    password_command = "pass show xcp/lab"

Passwords stay ``SecretStr`` so they never show in a repr, a log or a traceback.
"""

from __future__ import annotations

import os
import re
import shlex
import stat
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from poolctl.errors import UserFacing


class ConfigError(UserFacing):
    """A configuration problem, worded for the user: names the file, line or field."""


class PoolConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    backend: str = Field(min_length=1)
    url: str | None = None  # xen: the pool master
    uris: tuple[str, ...] = ()  # kvm: one libvirt URI per host
    username: str = "root"
    password: SecretStr | None = None
    password_command: str | None = None
    verify_tls: bool = True
    ca_file: Path | None = None
    fingerprint: str | None = None  # sha256 of a self-signed certificate, hex (colons allowed)
    # kvm: "p2p" (migrateToURI3, source daemon talks to destination) or "client" (migrate3)
    migration: Literal["p2p", "client"] = "p2p"
    shared_storage: tuple[str, ...] = ()  # kvm: storage pool names to treat as shared
    # kvm: URI the source daemon uses for each destination when it differs from ``uris``
    # (e.g. qemu+tcp://10.0.0.2/system for p2p while poolctl itself goes through ssh).
    migration_uris: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_password_source(self) -> PoolConfig:
        if self.password is not None and self.password_command:
            raise ValueError("set either password or password_command, not both")
        return self

    def resolve_password(self) -> str:
        """The password, running ``password_command`` if that is how it is given."""
        if self.password is not None:
            return self.password.get_secret_value()
        if not self.password_command:
            return ""
        try:
            proc = subprocess.run(
                shlex.split(self.password_command),
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ConfigError(f"pool {self.name!r}: password_command failed: {exc}") from exc
        if proc.returncode != 0:
            # stderr may be useful ("gpg: decryption failed"); stdout could be the secret.
            err = proc.stderr.strip().splitlines()[-1:] or ["no message"]
            raise ConfigError(f"pool {self.name!r}: password_command exited with {proc.returncode}: {err[0]}")
        return proc.stdout.rstrip("\n")


class MigrationSettings(BaseModel):
    """``[migration]``: defaults for the migrate dialog and ``poolctl migrate`` (their own
    fields and options still win)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ping_interval: float = Field(default=0.1, ge=0.001, le=10.0, strict=True)
    ping_port: int | None = Field(default=None, ge=1, le=65535, strict=True)


# what each [migration] key expects, for error messages
_MIGRATION_EXPECTS = {
    "ping_interval": "expected seconds between pings, more than 0 (at least 0.001) and at most 10",
    "ping_port": "expected a TCP port number, 1 to 65535",
}


# --- The config file -------------------------------------------------------------------------

ENV_VAR = "POOLCTL_CONFIG"

# Which address field each built-in backend reads, and what a value looks like. A backend
# not listed here (a third party's) must have ``url`` or ``uris``, whichever it documents.
ADDRESS_FIELDS: dict[str, tuple[str, str]] = {
    "xen": ("url", 'the pool master\'s address, e.g. url = "https://xcp-master.example"'),
    "kvm": ("uris", 'one libvirt URI per host, e.g. uris = ["qemu+ssh://root@kvm1/system"]'),
}
_ADDRESS_KEYS = ("url", "uris")
_FINGERPRINT = re.compile(r"^(?:[0-9a-fA-F]{2}:?){31}[0-9a-fA-F]{2}$")
_SECRET_KEYS = {"password"}


@dataclass(frozen=True)
class Config:
    pools: tuple[PoolConfig, ...]
    keys: dict[str, str]
    path: Path | None
    warnings: tuple[str, ...] = ()
    migration: MigrationSettings = MigrationSettings()


class _ConfigFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keys: dict[str, str] = Field(default_factory=dict)
    migration: MigrationSettings = Field(default_factory=MigrationSettings)
    pool: list[PoolConfig] = Field(default_factory=list)


def default_config_path() -> Path:
    """``config.toml`` in the user's config directory (XDG on Linux)."""
    from platformdirs import user_config_path  # ~8 ms: only paid when a config is read

    return user_config_path("poolctl") / "config.toml"


def load_config(path: Path | None = None) -> Config:
    """Read and validate a config file: ``path``, else ``$POOLCTL_CONFIG``, else the default.

    Raises ``ConfigError`` with one message naming the file, the line and what is expected.
    """
    explicit = path is not None or bool(os.environ.get(ENV_VAR))
    if path is None:
        env = os.environ.get(ENV_VAR)
        path = Path(env) if env else default_config_path()
    path = Path(path).expanduser()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"config file {path} does not exist") from None
        raise ConfigError(
            f"no config file at {path}: create it with one [[pool]] table per pool "
            '(name, backend = "xen" or "kvm", url or uris), or try `poolctl --demo` '
            "for a simulated pool"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
        data = tomllib.loads(text)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(_toml_message(path, exc)) from None
    return _validate(path, text, data)


def _toml_message(path: Path, exc: tomllib.TOMLDecodeError) -> str:
    msg = str(exc)
    line = getattr(exc, "lineno", None)  # Python >= 3.14 carries them as attributes
    col = getattr(exc, "colno", None)
    m = re.search(r"\s*\(at line (\d+), column (\d+)\)$", msg)
    if m:
        line, col = line or int(m[1]), col or int(m[2])
        msg = msg[: m.start()]
    elif m := re.search(r"\s*\(at end of document\)$", msg):
        msg = msg[: m.start()] + " at the end of the file"
    where = f"{path}:{line}:{col}" if line else str(path)
    return f"{where}: invalid TOML: {msg}"


def _validate(path: Path, text: str, data: dict) -> Config:
    locate = _Locator(path, text, data)
    pools_raw = data.get("pool")
    if isinstance(pools_raw, list):
        data = dict(data, pool=[_prepare(p, path) for p in pools_raw])
    try:
        parsed = _ConfigFile.model_validate(data)
    except ValidationError as exc:
        # ``from None``: the pydantic error repeats the input, passwords included.
        raise ConfigError(_pydantic_message(locate, exc)) from None
    problems = _check_pools(parsed.pool, locate)
    if problems:
        first, rest = problems[0], len(problems) - 1
        raise ConfigError(first + (f" (and {rest} more problem{'s' * (rest > 1)})" if rest else ""))
    warnings = []
    if any(p.password is not None for p in parsed.pool):
        mode = _mode(path)
        if mode is not None and mode & (stat.S_IRGRP | stat.S_IROTH):
            warnings.append(
                f"{path} holds a password and is readable by others (mode {stat.filemode(mode)}): "
                f"run `chmod 600 {path}` or use password_command"
            )
    return Config(
        pools=tuple(parsed.pool),
        keys=dict(parsed.keys),
        path=path,
        warnings=tuple(warnings),
        migration=parsed.migration,
    )


def _prepare(pool: object, path: Path) -> object:
    """Resolve ``ca_file`` against the config file's directory (and ``~``)."""
    if isinstance(pool, dict) and isinstance(pool.get("ca_file"), str):
        ca = Path(pool["ca_file"]).expanduser()
        pool = dict(pool, ca_file=ca if ca.is_absolute() else path.parent / ca)
    return pool


def _mode(path: Path) -> int | None:
    try:
        return path.stat().st_mode
    except OSError:
        return None


def _check_pools(pools: list[PoolConfig], locate: _Locator) -> list[str]:
    from poolctl import backends

    registered = sorted(backends.available())
    problems: list[str] = []
    seen: dict[str, int] = {}
    for i, pool in enumerate(pools):

        def bad(key: str | None, what: str, i: int = i) -> None:
            problems.append(f"{locate.where(('pool', i, key) if key else ('pool', i))}: {what}")

        if pool.name in seen:
            bad("name", f"duplicate pool name {pool.name!r} (also pool #{seen[pool.name] + 1}); names must be unique")
        seen.setdefault(pool.name, i)
        if pool.backend not in registered:
            known = ", ".join(registered) or "none"
            bad("backend", f"unknown backend {pool.backend!r}; registered backends: {known}")
            continue
        needed, example = ADDRESS_FIELDS.get(pool.backend, (None, ""))
        given = [k for k in _ADDRESS_KEYS if getattr(pool, k)]
        if needed is None and not given:
            bad(None, f"backend {pool.backend!r} needs url or uris")
        elif needed and needed not in given:
            bad(None, f"backend {pool.backend!r} needs {needed}: {example}")
        for other in given:
            if needed and other != needed:
                bad(other, f"backend {pool.backend!r} does not use {other}; it reads {needed}")
        if pool.url and pool.backend == "xen" and not pool.url.startswith(("http://", "https://")):
            bad("url", "expected an http:// or https:// address of the pool master")
        # Addresses name hosts in refs, messages and logs: a secret in one would leak everywhere.
        # The messages name the host only, never the address itself.
        if pool.url and _userinfo(pool.url)[0]:
            bad(
                "url",
                f"the url of {_userinfo(pool.url)[1]} holds credentials; "
                "put them in username and password (or password_command) instead",
            )
        for key, uris in (
            ("uris", pool.uris),
            ("migration_uris", (*pool.migration_uris, *pool.migration_uris.values())),
        ):
            for host in dict.fromkeys(h for has_password, h in map(_userinfo, uris) if has_password == "password"):
                bad(
                    key,
                    f"the libvirt URI for host {host} holds a password; put it in password or password_command instead",
                )
        if pool.ca_file is not None and not pool.ca_file.is_file():
            bad("ca_file", f"no such file: {pool.ca_file}")
        if pool.fingerprint and not _FINGERPRINT.match(pool.fingerprint):
            bad("fingerprint", "expected the certificate's SHA-256 as 64 hex digits (colons allowed)")
    return problems


def _userinfo(address: str) -> tuple[str, str]:
    """("password" or "user" or "", host) of an address; the address may be malformed."""
    try:
        parts = urlsplit(address)
        host = parts.hostname or "?"
        if parts.password is not None:
            return "password", host
        return ("user" if parts.username else ""), host
    except ValueError:  # e.g. an unbalanced IPv6 bracket: look for user:pass@ by hand
        netloc = address.partition("://")[2].partition("/")[0]
        userinfo, at, host = netloc.rpartition("@")
        return ("password" if ":" in userinfo else "user" if at else ""), host or "?"


def _pydantic_message(locate: _Locator, exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    err = errors[0]
    loc = tuple(err["loc"])
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc)
        what = f"unknown key {loc[-1]!r}" + (f"; expected one of: {allowed}" if allowed else "")
    elif loc == ("pool",) and kind == "list_type":
        what = "expected [[pool]] tables (double brackets), one per pool"
    elif kind == "missing":
        what = f"missing required key {loc[-1]!r}"
    elif loc == ("migration",):
        what = "expected a [migration] table (ping_interval, ping_port)"
    elif loc[:1] == ("migration",) and len(loc) == 2 and loc[1] in _MIGRATION_EXPECTS:
        value = err.get("input")
        what = _MIGRATION_EXPECTS[str(loc[1])] + (f" (got {value!r})" if isinstance(value, (str, int, float)) else "")
    else:
        what = err["msg"].removeprefix("Value error, ")
        if kind == "value_error" and len(loc) == 2 and "password_command" in what:
            loc = loc + ("password_command",)  # point at the line, not the table
        value = err.get("input")
        secret = any(part in _SECRET_KEYS for part in loc)
        if not secret and isinstance(value, (str, int, float, bool)) and kind != "value_error":
            what += f" (got {value!r})"
    rest = len(errors) - 1
    more = f" (and {rest} more problem{'s' * (rest > 1)})" if rest else ""
    return f"{locate.where(loc)}: {what}{more}"


def _allowed_keys(loc: tuple) -> str:
    if loc[:1] == ("pool",) and len(loc) == 3:
        return ", ".join(PoolConfig.model_fields)
    if loc[:1] == ("migration",) and len(loc) == 2:
        return ", ".join(MigrationSettings.model_fields)
    if len(loc) == 1:
        return "keys, migration, pool"
    return ""


class _Locator:
    """Maps a field path such as ``('pool', 1, 'url')`` back to a line of the file."""

    _TABLE = re.compile(r"^\s*\[\[\s*pool\s*\]\]")
    _HEADER = re.compile(r"^\s*\[")

    def __init__(self, path: Path, text: str, data: dict):
        self.path = path
        self.lines = text.splitlines()
        self.data = data
        self.pool_lines = [n for n, line in enumerate(self.lines) if self._TABLE.match(line)]

    def where(self, loc: tuple) -> str:
        line, label = None, ""
        if loc[:1] == ("pool",) and len(loc) >= 2 and isinstance(loc[1], int):
            i = loc[1]
            pools = self.data.get("pool") or []
            name = pools[i].get("name") if i < len(pools) and isinstance(pools[i], dict) else None
            label = f"pool #{i + 1}" + (f' ("{name}")' if isinstance(name, str) and name else "")
            if i < len(self.pool_lines):
                start = self.pool_lines[i]
                line = start
                if len(loc) >= 3 and loc[2] is not None:
                    line = self._key_line(start + 1, str(loc[2])) or start
            if len(loc) >= 3 and loc[2] is not None:
                label += f", {'.'.join(str(p) for p in loc[2:])}"
        elif loc:
            top = str(loc[0])
            label = ".".join(str(p) for p in loc)
            line = self._header_line(top)
            if line is None:
                line = self._key_line(0, top, stop_at_header=True)
            if len(loc) >= 2 and line is not None:
                line = self._key_line(line + 1, str(loc[1])) or line
        where = f"{self.path}:{line + 1}" if line is not None else str(self.path)
        return f"{where}: {label}" if label else where

    def _key_line(self, start: int, key: str, stop_at_header: bool = True) -> int | None:
        pattern = re.compile(rf"^\s*(?:{re.escape(key)}|\"{re.escape(key)}\"|'{re.escape(key)}')\s*=")
        for n in range(start, len(self.lines)):
            if stop_at_header and self._HEADER.match(self.lines[n]):
                return None
            if pattern.match(self.lines[n]):
                return n
        return None

    def _header_line(self, table: str) -> int | None:
        pattern = re.compile(rf"^\s*\[\s*{re.escape(table)}\s*\]")
        return next((n for n, line in enumerate(self.lines) if pattern.match(line)), None)
