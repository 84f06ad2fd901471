"""Backend discovery through the ``poolctl.backends`` entry-point group.

poolctl registers ``xen`` and ``kvm`` there itself; a third party adds a backend by
declaring an entry point in its own package, without touching poolctl. A backend brings
its own settings (``Backend.Config``), so the config file takes its keys too.

The two poolctl ships are found without reading the entry points: scanning every installed
distribution's metadata costs ~30 ms at start-up (importlib.metadata itself is most of it),
paid only for a name that is not one of them. Nothing here imports a backend's module, nor
``base`` (pydantic), until a backend is loaded.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from poolctl.backends.base import Backend

GROUP = "poolctl.backends"

# As pyproject.toml declares them in GROUP; these names are poolctl's own, an entry point of
# another distribution under one of them is not looked at.
BUILT_IN = {"xen": "poolctl.backends.xen:XenBackend", "kvm": "poolctl.backends.kvm:KvmBackend"}

# What to install when a backend's module cannot be imported, for the backends poolctl ships.
_INSTALL_HINTS = {"kvm": "install poolctl[kvm] for libvirt-python"}


def available() -> dict[str, EntryPoint]:
    """Every backend registered in GROUP, poolctl's own included (reads the entry points)."""
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=GROUP)}


class _Registered(Mapping[str, str]):
    """The registered names: a built-in one is known without reading the entry points."""

    _all: dict[str, str] | None = None

    def _names(self) -> dict[str, str]:
        if self._all is None:
            self._all = {**{name: ep.value for name, ep in available().items()}, **BUILT_IN}
        return self._all

    def __contains__(self, name: object) -> bool:
        return name in BUILT_IN or name in self._names()

    def __getitem__(self, name: str) -> str:
        return BUILT_IN[name] if name in BUILT_IN else self._names()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())


def registered() -> Mapping[str, str]:
    """The registered backends' names (to their ``module:Class``), read lazily."""
    return _Registered()


def load(name: str) -> type[Backend]:
    """The backend class registered as ``name``, or a ``BackendError`` saying what exists."""
    from poolctl.backends.base import Backend, BackendError

    ep: EntryPoint | None = None
    if name not in BUILT_IN:
        eps = available()
        if name not in eps:
            known = ", ".join(sorted({*eps, *BUILT_IN})) or "none"
            raise BackendError(f"unknown backend {name!r}: registered backends are {known}")
        ep = eps[name]
    try:
        if ep is None:
            module, _, attr = BUILT_IN[name].partition(":")
            cls = getattr(importlib.import_module(module), attr)
        else:
            cls = ep.load()
    except ImportError as exc:
        hint = _INSTALL_HINTS.get(name) or (_dist_hint(ep) if ep is not None else "")
        raise BackendError(f"backend {name!r} cannot be loaded: {exc}{f' ({hint})' if hint else ''}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise BackendError(f"entry point {name!r} of {GROUP} is not a poolctl Backend class")
    return cls


def _dist_hint(ep: EntryPoint) -> str:
    dist = ep.dist.name if ep.dist is not None else ""
    return f"reinstall {dist} with its dependencies" if dist else ""
