"""Scenario files: the pool a simulator starts with, validated by pydantic.

A scenario is TOML or JSON. `lab` is shipped in scenarios/lab.toml. Errors name the file and the
offending field (e.g. "vms.3.host: unknown host 'xcp-lab-9'").
"""

from __future__ import annotations

import ipaddress
import json
import tomllib
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PowerState = Literal["Running", "Halted", "Suspended", "Paused"]


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the file and field."""


def _loopback(value: str) -> str:
    if not ipaddress.ip_address(value).is_loopback:
        raise ValueError(f"{value} is not a loopback address (127.0.0.0/8)")
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HostSpec(_Model):
    name: str = Field(min_length=1)
    address: str
    memory_gib: float = Field(64, gt=0)
    cpus: int = Field(16, ge=1)
    cpu_model: str = "Intel(R) Xeon(R) Silver 4214 CPU @ 2.20GHz"
    dom0_memory_gib: float = Field(4, gt=0)
    master: bool = False

    @field_validator("address")
    @classmethod
    def _check_address(cls, value: str) -> str:
        return _loopback(value)


class SRSpec(_Model):
    name: str = Field(min_length=1)
    type: str = "lvmoiscsi"
    shared: bool = True
    host: str | None = None  # the one host that sees a local SR
    size_gib: float = Field(1024, gt=0)
    content_type: str = "user"

    @model_validator(mode="after")
    def _local_needs_host(self) -> SRSpec:
        if not self.shared and self.host is None:
            raise ValueError(f"local SR {self.name!r} needs `host`")
        if self.shared and self.host is not None:
            raise ValueError(f"shared SR {self.name!r} must not name a `host`")
        return self


class NetworkSpec(_Model):
    name: str = Field(min_length=1)
    bridge: str
    device: str = "eth1"
    management: bool = False


class DiskSpec(_Model):
    sr: str
    size_gib: float = Field(20, gt=0)
    name: str | None = None


class VMSpec(_Model):
    name: str = Field(min_length=1)
    host: str | None = None
    power_state: PowerState = "Running"
    vcpus: int = Field(2, ge=1)
    memory_gib: float = Field(2, gt=0)
    ip: str | None = None
    os: str = "Debian GNU/Linux 12 (bookworm)"
    disks: list[DiskSpec] = []
    networks: list[str] = []

    @field_validator("ip")
    @classmethod
    def _check_ip(cls, value: str | None) -> str | None:
        return None if value is None else _loopback(value)

    @model_validator(mode="after")
    def _resident_needs_host(self) -> VMSpec:
        if self.power_state in ("Running", "Paused") and self.host is None:
            raise ValueError(f"VM {self.name!r} is {self.power_state} but names no `host`")
        return self


class Scenario(_Model):
    pool: str = "lab"
    hosts: list[HostSpec] = Field(min_length=1)
    srs: list[SRSpec] = []
    networks: list[NetworkSpec] = []
    vms: list[VMSpec] = []
    default_sr: str | None = None

    @model_validator(mode="after")
    def _cross_references(self) -> Scenario:
        def unique(kind: str, names: list[str]) -> set[str]:
            seen: set[str] = set()
            for n in names:
                if n in seen:
                    raise ValueError(f"duplicate {kind} name {n!r}")
                seen.add(n)
            return seen

        hosts = unique("host", [h.name for h in self.hosts])
        unique("host address", [h.address for h in self.hosts])
        srs = unique("SR", [s.name for s in self.srs])
        nets = unique("network", [n.name for n in self.networks])
        unique("VM", [v.name for v in self.vms])
        if sum(h.master for h in self.hosts) > 1:
            raise ValueError("more than one host has master = true")
        for s in self.srs:
            if s.host is not None and s.host not in hosts:
                raise ValueError(f"SR {s.name!r}: unknown host {s.host!r}")
        if self.default_sr is not None and self.default_sr not in srs:
            raise ValueError(f"default_sr: unknown SR {self.default_sr!r}")
        local_host = {s.name: s.host for s in self.srs if not s.shared}
        for v in self.vms:
            if v.host is not None and v.host not in hosts:
                raise ValueError(f"VM {v.name!r}: unknown host {v.host!r}")
            for d in v.disks:
                if d.sr not in srs:
                    raise ValueError(f"VM {v.name!r}: unknown SR {d.sr!r}")
                owner = local_host.get(d.sr)
                if owner is not None and v.host is not None and v.host != owner:
                    raise ValueError(
                        f"VM {v.name!r} runs on {v.host!r} but has a disk on {owner!r}'s local SR {d.sr!r}"
                    )
            for n in v.networks:
                if n not in nets:
                    raise ValueError(f"VM {v.name!r}: unknown network {n!r}")
        return self

    @property
    def master(self) -> HostSpec:
        return next((h for h in self.hosts if h.master), self.hosts[0])


def parse_scenario(data: dict[str, object], source: str = "<scenario>") -> Scenario:
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'scenario'}: {e['msg']}" for e in exc.errors())
        raise ScenarioError(f"{source}: {problems}") from None


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A shipped scenario by name ("lab") or a .toml/.json file."""
    path = Path(name_or_path)
    if isinstance(name_or_path, str) and not path.suffix and not path.exists():
        shipped = resources.files(__package__).joinpath("scenarios", f"{name_or_path}.toml")
        if not shipped.is_file():
            raise ScenarioError(f"no shipped scenario {name_or_path!r} (try 'lab' or a file path)")
        return parse_scenario(tomllib.loads(shipped.read_text("utf-8")), f"scenario {name_or_path!r}")
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ScenarioError(f"{path}: {exc}") from None
    return parse_scenario(data, str(path))
