"""Pool configuration: what a backend needs to reach one pool.

The file loader (TOML, validated here) turns ``[[pool]]`` tables into ``PoolConfig``.
Passwords stay ``SecretStr`` so they never show in a repr, a log or a traceback.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


class ConfigError(Exception):
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
            raise ConfigError(
                f"pool {self.name!r}: password_command exited with {proc.returncode}: {err[0]}"
            )
        return proc.stdout.rstrip("\n")
