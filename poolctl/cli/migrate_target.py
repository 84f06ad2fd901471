"""Where `poolctl migrate VM HOST` sends the VM: a host of its own pool, or of another configured
pool (`POOL/HOST`, or `--to-pool POOL`), and the migration network (`--network NET`) among that
pool's networks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from poolctl.backends.base import Unsupported
from poolctl.cli.pools import Loaded
from poolctl.config import PoolConfig
from poolctl.errors import ExitCode, Failure
from poolctl.migration.cross_pool import label, link
from poolctl.model import Host, Inventory, Network
from poolctl.safe_text import quoted, shown


@dataclass(frozen=True)
class Aim:
    """What the user asked for: the host's key and, for another pool, that pool's name."""

    host: str
    pool: str | None = None  # None: the VM's own pool


def aim(host: str, to_pool: str | None, pools: Sequence[PoolConfig]) -> Aim:
    """``--to-pool POOL HOST``, or ``POOL/HOST`` when POOL is a configured pool's name (a host
    name with a slash in it still works: its prefix names no pool)."""
    names = {p.name for p in pools}
    if to_pool is not None:
        if to_pool not in names:
            known = ", ".join(sorted(shown(n) for n in names)) or "none"
            raise Failure(f"--to-pool: no pool named {quoted(to_pool)}; pools: {known}", ExitCode.NO_MATCH)
        return Aim(host, to_pool)
    prefix, sep, rest = host.partition("/")
    if sep and rest and prefix in names:
        return Aim(rest, prefix)
    return Aim(host)


@dataclass(frozen=True)
class Target:
    pool: Loaded  # the destination's pool (the VM's own, or another)
    host: Host
    elsewhere: bool  # another pool: a cross-pool move

    @property
    def label(self) -> str:
        """The host as people read it: ``POOL/HOST`` when it is another pool's."""
        return label(self.pool.config.name if self.elsewhere else None, self.host.name)


def find_host(inv: Inventory, key: str, pool: str) -> Host:
    hosts = [h for h in inv.hosts if key in (h.name, h.ref, h.uuid)]
    if len(hosts) != 1:
        known = ", ".join(sorted(shown(h.name) for h in inv.hosts))
        raise Failure(
            f"pool {quoted(pool)} has {'no' if not hosts else 'several'} host(s) named {quoted(key)}; hosts: {known}",
            ExitCode.NO_MATCH,
        )
    return hosts[0]


def find_network(inv: Inventory, key: str, pool: str) -> Network:
    """A network by name or ref; a name several networks share is refused (give the ref)."""
    found = [n for n in inv.networks if key == n.ref] or [n for n in inv.networks if key == n.name]
    if len(found) == 1:
        return found[0]
    if found:
        refs = ", ".join(shown(n.ref) for n in found)
        raise Failure(f"{quoted(key)} names {len(found)} networks in pool {quoted(pool)}: {refs}", ExitCode.NO_MATCH)
    known = ", ".join(sorted(shown(n.name) for n in inv.networks)) or "none"
    raise Failure(f"pool {quoted(pool)} has no network named {quoted(key)}; networks: {known}", ExitCode.NO_MATCH)


def target(source: Loaded, loaded: Sequence[Loaded], wanted: Aim) -> Target:
    """The destination host, in the VM's pool or in the loaded pool ``wanted`` names."""
    if wanted.pool is None or wanted.pool == source.config.name:
        return Target(source, find_host(source.inventory, wanted.host, source.config.name), False)
    there = next((lp for lp in loaded if lp.config.name == wanted.pool), None)
    if there is None:  # it did not load: its own error is printed already
        raise Failure(f"pool {quoted(wanted.pool)} could not be loaded (see above)", ExitCode.FAILED)
    try:
        link(source.backend, there.backend)
    except Unsupported as exc:
        raise Failure(str(exc), ExitCode.REFUSED) from None
    return Target(there, find_host(there.inventory, wanted.host, there.config.name), True)


def migration_network(lp: Loaded, key: str | None) -> Network | None:
    """``--network NET`` among the pool's networks, as `poolctl migrate` finds it; refused where
    the backend cannot choose the network a move takes."""
    if key is None:
        return None
    if not lp.backend.capabilities.migration_network:
        raise Failure(
            f"pool {quoted(lp.config.name)}: the {lp.config.backend} backend cannot choose the migration network "
            "(--network)",
            ExitCode.REFUSED,
        )
    return find_network(lp.inventory, key, lp.config.name)


def over_words(network: Network | None) -> str:
    """`` over network 'NET'`` for a heading, or nothing for the management network."""
    return f" over network {quoted(network.name)}" if network is not None else ""
