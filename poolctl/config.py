"""The config file: ``[[pool]]`` tables, ``[keys]`` and ``[migration]``, validated.

The file loader (``load_config``: TOML) turns each ``[[pool]]`` table into the settings model
of the backend its ``backend =`` names (``Backend.Config``, found through the entry-point
group: the backend declares its own keys and checks), ``[keys]`` into a key map for the TUI
and ``[migration]`` into the defaults of the migrate dialog and of ``poolctl migrate``::

    [keys]                      # binding id (press ? in the TUI) = key(s)
    "vm.force_off" = "ctrl+k"

    [migration]                 # optional; every key optional
    ping_interval = 0.1         # seconds between pings while a VM moves: 0.001 to 10
    ping_port = 22              # probe this TCP port where ICMP is not permitted (default: none)
    outcome_wait = 600          # contact lost mid-move: seconds to keep trying to learn the outcome
    tune = "auto"               # "auto": poolctl chooses what is not set below; "off": the hypervisor's defaults
    max_downtime = 10           # ms the guest may pause (KVM)
    bandwidth = 16              # MiB/s cap on the memory copy (KVM)
    auto_converge = true        # let the hypervisor throttle a guest that out-writes the copy (KVM)
    post_copy = "auto"          # "auto" (if pre-copy stalls), "always", "never" (KVM)
    parallel = 2                # connections for the copy (KVM)
    compress = false            # compress the memory stream (KVM)
    storage_rate = 100          # MiB/s a disk copy (storage motion) is estimated at

    [[pool]]                    # one table per pool
    name = "lab"
    backend = "xen"
    url = "https://xcp-master.example"
    password_command = "pass show xcp/lab"

Code that builds a pool itself (the demo, tests) goes through ``pool_config``, the same checks.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, SecretBytes, SecretStr, ValidationError
from pydantic_core import ErrorDetails

from poolctl import backends
from poolctl.backends.base import BackendError
from poolctl.ping.limits import DEFAULT_INTERVAL, INTERVAL_MAX_S, INTERVAL_MIN_S
from poolctl.poolconfig import CONFIG_DIR, ConfigError, PoolConfig

__all__ = [
    "ENV_VAR",
    "Config",
    "ConfigError",
    "MigrationSettings",
    "PoolConfig",
    "default_config_path",
    "load_config",
    "pool_config",
]


class MigrationSettings(BaseModel):
    """``[migration]``: defaults for the migrate dialog and ``poolctl migrate`` (their own
    fields and options still win)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ping_interval: float = Field(default=DEFAULT_INTERVAL, ge=INTERVAL_MIN_S, le=INTERVAL_MAX_S, strict=True)
    ping_port: int | None = Field(default=None, ge=1, le=65535, strict=True)
    # after losing contact with a pool mid-move: how long to keep trying to learn how it ended
    outcome_wait: float = Field(default=600.0, gt=0, le=86400)
    # the tuning knobs (poolctl.migration.tuner.TuneRequest): None = the tuner chooses
    tune: Literal["auto", "off"] = "auto"
    max_downtime: int | None = Field(default=None, ge=1, le=60000, strict=True)
    bandwidth: int | None = Field(default=None, ge=1, le=1 << 20, strict=True)
    auto_converge: bool | None = Field(default=None, strict=True)
    post_copy: Literal["auto", "always", "never"] = "auto"
    parallel: int | None = Field(default=None, ge=1, le=16, strict=True)
    compress: bool | None = Field(default=None, strict=True)
    # the estimate of a storage motion's disk copy (size / rate), in MiB/s
    storage_rate: float = Field(default=100.0, gt=0, le=1_000_000)


# what each [migration] key expects, for error messages
_MIGRATION_EXPECTS = {
    "ping_interval": (
        f"expected seconds between pings, more than 0 (at least {INTERVAL_MIN_S:g}) and at most {INTERVAL_MAX_S:g}"
    ),
    "ping_port": "expected a TCP port number, 1 to 65535",
    "outcome_wait": "expected seconds, more than 0 and at most 86400 (a day)",
    "tune": 'expected "auto" or "off"',
    "max_downtime": "expected milliseconds, a whole number from 1 to 60000",
    "bandwidth": "expected MiB/s, a whole number of at least 1",
    "auto_converge": "expected true or false",
    "post_copy": 'expected "auto", "always" or "never"',
    "parallel": "expected a number of connections, 1 to 16",
    "compress": "expected true or false",
    "storage_rate": "expected MiB/s, more than 0",
}


# --- The config file -------------------------------------------------------------------------

ENV_VAR = "POOLCTL_CONFIG"

Loc = tuple[int | str, ...]  # a field's path, e.g. ("pool", 1, "url")
Where = Callable[[Loc], str]  # a path in the user's words: "config.toml:7: pool #1 ("lab"), url"


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
    # each table is checked against the model of its backend, once that is known (``_pool``)
    pool: list[dict[str, Any]] = Field(default_factory=list)


def pool_config(table: Mapping[str, object]) -> PoolConfig:
    """One pool's settings from a table as a ``[[pool]]`` would hold it (Python values such
    as tuples or a ``Path`` are fine), validated against its backend's model like the file's
    are. Raises ``ConfigError`` naming the pool and the field, never echoing a password."""
    name = table.get("name")
    label = f"pool {name!r}" if isinstance(name, str) and name else "pool"

    def where(loc: Loc) -> str:
        return label + (f", {'.'.join(str(p) for p in loc[2:])}" if len(loc) > 2 else "")

    result = _pool(0, dict(table), where, {}, backends.registered())
    if isinstance(result, list):
        raise ConfigError(_one_line(result))
    return result


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


def _validate(path: Path, text: str, data: dict[str, Any]) -> Config:
    locate = _Locator(path, text, data)
    problems: list[str] = []
    parsed: _ConfigFile | None = None
    try:
        parsed = _ConfigFile.model_validate(data)
    except ValidationError as exc:
        # no chaining anywhere: a pydantic error repeats the input, passwords included
        problems += [_problem(locate.where, err) for err in exc.errors(include_url=False)]
    pools: list[PoolConfig] = []
    tables = data.get("pool")
    if isinstance(tables, list):
        registered = backends.registered()
        context = {CONFIG_DIR: path.parent}
        seen: dict[str, int] = {}
        for i, table in enumerate(tables):
            if not isinstance(table, dict):
                continue  # _ConfigFile has said so
            name = table.get("name")
            if isinstance(name, str) and name in seen:
                problems.append(
                    f"{locate.where(('pool', i, 'name'))}: duplicate pool name {name!r} "
                    f"(also pool #{seen[name] + 1}); names must be unique"
                )
            if isinstance(name, str):
                seen.setdefault(name, i)
            result = _pool(i, table, locate.where, context, registered)
            if isinstance(result, list):
                problems += result
            else:
                pools.append(result)
    if problems or parsed is None:
        raise ConfigError(_one_line(problems))
    warnings = []
    if any(p.password is not None for p in pools):
        mode = _mode(path)
        if mode is not None and mode & (stat.S_IRGRP | stat.S_IROTH):
            warnings.append(
                f"{path} holds a password and is readable by others (mode {stat.filemode(mode)}): "
                f"run `chmod 600 {path}` or use password_command"
            )
    warnings += [w for p in pools for w in p.warnings()]
    return Config(
        pools=tuple(pools),
        keys=dict(parsed.keys),
        path=path,
        warnings=tuple(warnings),
        migration=parsed.migration,
    )


def _pool(
    i: int, table: dict[str, Any], where: Where, context: Mapping[str, object], registered: Mapping[str, object]
) -> PoolConfig | list[str]:
    """Table ``i`` as its backend's model, or what is wrong with it."""
    backend = table.get("backend")
    model: type[PoolConfig] = PoolConfig
    if isinstance(backend, str) and backend:
        if backend not in registered:
            known = ", ".join(sorted(registered)) or "none"
            return [f"{where(('pool', i, 'backend'))}: unknown backend {backend!r}; registered backends: {known}"]
        try:
            model = backends.load(backend).Config
        except BackendError as exc:  # e.g. its module needs a library that is not installed
            return [f"{where(('pool', i, 'backend'))}: {exc}"]
    else:
        # the keys a pool takes depend on its backend: without one, judge the shared keys only
        table = {k: v for k, v in table.items() if k in PoolConfig.model_fields}
        backend = ""
    try:
        return model.model_validate(table, context=context)
    except ValidationError as exc:
        return [_problem(where, err, ("pool", i), model, backend) for err in exc.errors(include_url=False)]


def _one_line(problems: list[str]) -> str:
    first, rest = (problems[0] if problems else "invalid configuration"), len(problems) - 1
    return first + (f" (and {rest} more problem{'s' * (rest > 1)})" if rest > 0 else "")


def _mode(path: Path) -> int | None:
    try:
        return path.stat().st_mode
    except OSError:
        return None


def _problem(
    where: Where, err: ErrorDetails, prefix: Loc = (), model: type[PoolConfig] | None = None, backend: str = ""
) -> str:
    """One pydantic error in the user's words. ``model`` is the pool's (``prefix`` its path)
    when the error is about a ``[[pool]]`` table, else the error is about the file's top level."""
    loc: Loc = prefix + tuple(err["loc"])
    kind = err["type"]
    key = str(loc[-1]) if loc else ""
    value = err.get("input")
    pool_key = model is not None and len(loc) == 3  # a key of a [[pool]] table itself
    if kind == "extra_forbidden":
        what = _address_hint(model, backend, key, value) if model is not None and pool_key else ""
        if not what:
            allowed = _allowed_keys(loc, model)
            what = f"unknown key {key!r}" + (f"; expected one of: {allowed}" if allowed else "")
    elif loc == ("pool",) and kind == "list_type":
        what = "expected [[pool]] tables (double brackets), one per pool"
    elif kind == "missing" and model is not None and pool_key and key not in PoolConfig.model_fields:
        # a key of the backend's own: say what it is for (the [[pool]] line: the key is absent)
        description = model.model_fields[key].description if key in model.model_fields else None
        what = f"backend {backend!r} needs {key}" + (f": {description}" if description else "")
        loc = loc[:2]
    elif kind == "missing":
        what = f"missing required key {key!r}"
    elif loc == ("migration",):
        what = f"expected a [migration] table ({', '.join(MigrationSettings.model_fields)})"
    elif loc[:1] == ("migration",) and len(loc) == 2 and loc[1] in _MIGRATION_EXPECTS:
        what = _MIGRATION_EXPECTS[str(loc[1])] + (f" (got {value!r})" if isinstance(value, (str, int, float)) else "")
    else:
        what = err["msg"].removeprefix("Value error, ")
        if kind == "value_error" and len(loc) == 2 and "password_command" in what:
            loc = loc + ("password_command",)  # point at the line, not the table
        secret = any(_is_secret(model, part) for part in loc if isinstance(part, str))
        # a value_error's message is a validator's own words, which say all that is safe to say
        if not secret and isinstance(value, (str, int, float, bool)) and kind != "value_error":
            what += f" (got {value!r})"
    return f"{where(loc)}: {what}"


def _address_hint(model: type[PoolConfig], backend: str, key: str, value: object) -> str:
    """For an address given under a key the backend does not read (``uris`` for xen): where it goes."""
    address = model.ADDRESS_FIELD
    values = list(value.items()) if isinstance(value, dict) else value if isinstance(value, list | tuple) else [value]
    flat = [v for item in values for v in (item if isinstance(item, tuple) else (item,))]
    if not address or not any(isinstance(v, str) and "://" in v for v in flat):
        return ""
    description = model.model_fields[address].description
    return f"backend {backend!r} does not use {key}; it reads {address}" + (f": {description}" if description else "")


def _is_secret(model: type[PoolConfig] | None, key: str) -> bool:
    """Whether a pool field holds a secret: the password, a backend's token (any ``Secret*``)."""
    field = model.model_fields.get(key) if model is not None else None
    return field is not None and _mentions_secret(field.annotation)


def _mentions_secret(annotation: object) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, SecretStr | SecretBytes):
        return True
    return any(_mentions_secret(arg) for arg in get_args(annotation))


def _allowed_keys(loc: Loc, model: type[PoolConfig] | None) -> str:
    if model is not None and len(loc) == 3:
        return ", ".join(model.model_fields)
    if loc[:1] == ("migration",) and len(loc) == 2:
        return ", ".join(MigrationSettings.model_fields)
    if len(loc) == 1:
        return "keys, migration, pool"
    return ""


class _Locator:
    """Maps a field path such as ``('pool', 1, 'url')`` back to a line of the file."""

    _TABLE = re.compile(r"^\s*\[\[\s*pool\s*\]\]")
    _HEADER = re.compile(r"^\s*\[")

    def __init__(self, path: Path, text: str, data: dict[str, Any]):
        self.path = path
        self.lines = text.splitlines()
        self.data = data
        self.pool_lines = [n for n, line in enumerate(self.lines) if self._TABLE.match(line)]

    def where(self, loc: Loc) -> str:
        line, label = None, ""
        if loc[:1] == ("pool",) and len(loc) >= 2 and isinstance(loc[1], int):
            i = loc[1]
            pools = self.data.get("pool") or []
            name = pools[i].get("name") if i < len(pools) and isinstance(pools[i], dict) else None
            label = f"pool #{i + 1}" + (f' ("{name}")' if isinstance(name, str) and name else "")
            if i < len(self.pool_lines):
                start = self.pool_lines[i]
                line = start
                if len(loc) >= 3:
                    line = self._key_line(start + 1, str(loc[2])) or start
            if len(loc) >= 3:
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
