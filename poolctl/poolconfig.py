"""What every backend's pool settings share, and the error a bad setting raises.

Each backend subclasses ``PoolConfig`` with the fields it reads (``Backend.Config``); the file
loader (``poolctl.config``) validates each ``[[pool]]`` table against the model of the backend
it names. This module imports neither: backends build on it without reaching the loader.
Passwords stay ``SecretStr`` so they never show in a repr, a log or a traceback.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, model_validator

from poolctl.errors import UserFacing

# The validation context key under which the loader passes the config file's directory.
CONFIG_DIR = "config_dir"


class ConfigError(UserFacing):
    """A configuration problem, worded for the user: names the file, line or field."""


class PoolConfig(BaseModel):
    """One pool: its name, which backend serves it and how to log in."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # The field a backend reads its pool's address from, if it has one: a value that looks like
    # an address under a key the backend does not know gets pointed there.
    ADDRESS_FIELD: ClassVar[str] = ""

    name: str = Field(min_length=1)
    backend: str = Field(min_length=1)
    username: str = "root"
    password: SecretStr | None = None
    password_command: str | None = None

    @model_validator(mode="after")
    def _one_password_source(self) -> PoolConfig:
        if self.password is not None and self.password_command:
            raise ValueError("set either password or password_command, not both")
        return self

    def warnings(self) -> list[str]:
        """Settings that are valid but will not do what they seem to (said at config load)."""
        return []

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
            # Neither stream is shown: stdout could be the secret, and a helper's stderr may
            # echo it too ("bad passphrase: hunter2"). Run the command by hand to see why.
            raise ConfigError(
                f"pool {self.name!r}: password_command exited with {proc.returncode} "
                "(its output is not shown: it may hold the secret)"
            )
        return proc.stdout.rstrip("\n")


def relative_to_config(path: Path, info: ValidationInfo) -> Path:
    """``path`` with ``~`` expanded and, when relative, taken from the config file's directory
    (when the table came from a file)."""
    path = path.expanduser()
    base = info.context.get(CONFIG_DIR) if isinstance(info.context, Mapping) else None
    if isinstance(base, Path) and not path.is_absolute():
        return base / path
    return path


def credentials_in(address: str) -> tuple[str, str]:
    """("password" or "user" or "", host) of an address; the address may be malformed.

    Addresses name hosts in refs, messages and logs: a secret in one would leak everywhere,
    so messages about one name the host only, never the address."""
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
