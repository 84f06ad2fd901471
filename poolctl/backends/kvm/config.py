"""The settings of a KVM pool: one libvirt URI per host, and how migrations reach them."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from poolctl.poolconfig import PoolConfig, credentials_in

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
