"""The first thing a command that loads pools does: start each KVM host's open.

Before the config file is validated (pydantic, the backends' modules: ~0.2 s of a start-up) and
before the TUI is imported, the file is read as plain TOML and each host of each KVM pool starts
opening (``poolctl.backends.kvm.early``): an open over a link is mostly waiting on the host, so
it runs beside poolctl's own start instead of after it. The validated pool takes it over, or
opens its hosts itself when the table turns out to be something else. This module is not the
config's loader: a file it cannot read or make sense of starts nothing and says nothing (the
loader says what is wrong). It imports the standard library only, and libvirt once a KVM pool
is there. The Xen backend's login is one short call: it is not started here.
"""

from __future__ import annotations

import os
import sys
import tomllib
from collections.abc import Collection
from pathlib import Path
from typing import Any

ENV_VAR = "POOLCTL_CONFIG"  # as poolctl.config: that module imports pydantic


def start(path: Path | None, *, only: Collection[str] | None = None) -> None:
    """Start the opens of the KVM pools in the config file ``path`` (else ``$POOLCTL_CONFIG``,
    else the default), or of the pools named in ``only``. Opens an earlier command of this
    process started and nothing took are closed first."""
    tables = _pool_tables(path)
    kvm = [t for t in tables if t.get("backend") == "kvm" and (not only or t.get("name") in only)]
    if not kvm:
        if (loaded := sys.modules.get("poolctl.backends.kvm.early")) is not None:
            loaded.discard_all()
        return
    try:
        from poolctl.backends.kvm import early
    except ImportError:  # no libvirt-python: the config's loader says so
        return
    early.discard_all()
    folder = _file(path).parent
    for table in kvm:
        early.start_pool(table, folder)


def _file(path: Path | None) -> Path:
    if path is None:
        env = os.environ.get(ENV_VAR)
        if env:
            path = Path(env)
        else:
            from platformdirs import user_config_path

            path = user_config_path("poolctl") / "config.toml"
    return Path(path).expanduser()


def _pool_tables(path: Path | None) -> list[dict[str, Any]]:
    try:
        data = tomllib.loads(_file(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # missing, unreadable, not UTF-8, not TOML: the loader says
        return []
    tables = data.get("pool")
    return [t for t in tables if isinstance(t, dict)] if isinstance(tables, list) else []
