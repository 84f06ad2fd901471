"""The settings of a Xen pool: where its master is and how to trust its certificate."""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

from pydantic import Field, ValidationInfo, field_validator

from poolctl.poolconfig import PoolConfig, credentials_in, relative_to_config

_FINGERPRINT = re.compile(r"^(?:[0-9a-fA-F]{2}:?){31}[0-9a-fA-F]{2}$")


class XenConfig(PoolConfig):
    ADDRESS_FIELD: ClassVar[str] = "url"

    url: str = Field(description='the pool master\'s address, e.g. url = "https://xcp-master.example"')
    verify_tls: bool = True
    ca_file: Path | None = None  # relative to the config file's directory
    fingerprint: str | None = None  # sha256 of a self-signed certificate, hex (colons allowed)

    @field_validator("url")
    @classmethod
    def _master_address(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// address of the pool master")
        has, host = credentials_in(url)
        if has:
            raise ValueError(
                f"the url of {host} holds credentials; put them in username and password (or password_command) instead"
            )
        return url

    @field_validator("ca_file")
    @classmethod
    def _existing_ca_file(cls, ca_file: Path | None, info: ValidationInfo) -> Path | None:
        if ca_file is None:
            return None
        path = relative_to_config(ca_file, info)
        if not path.is_file():
            raise ValueError(f"no such file: {path}")
        return path

    @field_validator("fingerprint")
    @classmethod
    def _sha256_hex(cls, fingerprint: str | None) -> str | None:
        if fingerprint and not _FINGERPRINT.match(fingerprint):
            raise ValueError("expected the certificate's SHA-256 as 64 hex digits (colons allowed)")
        return fingerprint
