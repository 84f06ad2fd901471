"""The settings of a KVM pool: one libvirt URI per host, and how migrations reach them."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, field_validator

from poolctl.poolconfig import PoolConfig, credentials_in, relative_to_config

_URIS = 'one libvirt URI per host, e.g. uris = ["qemu+ssh://root@kvm1/system"]'


class KvmConfig(PoolConfig):
    ADDRESS_FIELD: ClassVar[str] = "uris"

    uris: tuple[str, ...] = Field(description=_URIS)
    # "p2p" (migrateToURI3, source daemon talks to destination) or "client" (migrate3)
    migration: Literal["p2p", "client"] = "p2p"
    shared_storage: tuple[str, ...] = ()  # storage pool names to treat as shared
    # The URI the source daemon uses for each destination when it differs from ``uris``
    # (e.g. qemu+tcp://10.0.0.2/system for p2p while poolctl itself goes through ssh).
    migration_uris: dict[str, str] = Field(default_factory=dict)
    # How long opening one host may take in all (TCP, ssh, login, libvirt's handshake) before
    # the attempt is abandoned and the host shown unreachable.
    connect_timeout_s: float = Field(default=15.0, gt=0, le=600)
    # A known_hosts file for the hosts' SSH keys, for qemu+ssh (OpenSSH's UserKnownHostsFile)
    # and qemu+libssh (libvirt's known_hosts=); empty: ssh's own (~/.ssh/known_hosts).
    known_hosts: str = ""

    @field_validator("known_hosts")
    @classmethod
    def _expand(cls, path: str, info: ValidationInfo) -> str:
        return str(relative_to_config(Path(path), info)) if path else ""

    def warnings(self) -> list[str]:
        """Settings this pool has that some of its URIs cannot use."""
        out = []
        ssh = [u for u in self.uris if urlsplit(u).scheme.endswith("+ssh")]
        given = [f for f in ("password", "password_command") if getattr(self, f)]
        if "username" in self.model_fields_set:
            given.insert(0, "username")
        if ssh and given:
            out.append(
                f"pool {self.name!r}: {' and '.join(given)} cannot be used by its qemu+ssh:// host(s) "
                f"({', '.join(urlsplit(u).hostname or u for u in ssh)}): OpenSSH logs in with keys (keyfile= "
                "or ssh-agent) as the URI's user; use qemu+libssh:// for a password"
            )
        return out

    @field_validator("uris")
    @classmethod
    def _one_per_host(cls, uris: tuple[str, ...]) -> tuple[str, ...]:
        if not uris:
            raise ValueError(f"backend 'kvm' needs uris: {_URIS}")
        _refuse_passwords(uris)
        return uris

    @field_validator("migration_uris")
    @classmethod
    def _no_passwords(cls, migration_uris: dict[str, str]) -> dict[str, str]:
        _refuse_passwords((*migration_uris, *migration_uris.values()))
        return migration_uris


def _refuse_passwords(uris: tuple[str, ...]) -> None:
    for has, host in map(credentials_in, uris):
        if has == "password":
            raise ValueError(
                f"the libvirt URI for host {host} holds a password; put it in password or password_command instead"
            )
