"""Finding what a command names (a pool, a host) among the loaded pools, with the same words and
exit codes in every command that takes a host."""

from __future__ import annotations

from collections.abc import Sequence

from poolctl.cli.pools import Loaded
from poolctl.config import PoolConfig
from poolctl.errors import ExitCode, Failure
from poolctl.model import Host
from poolctl.safe_text import quoted, shown


def only_pool(pools: Sequence[PoolConfig], name: str | None) -> list[PoolConfig]:
    """``--pool NAME``: that pool alone (``Failure`` with exit 4 when there is none)."""
    if name is None:
        return list(pools)
    chosen = [p for p in pools if p.name == name]
    if not chosen:
        known = ", ".join(p.name for p in pools) or "none"
        raise Failure(f"no pool named {name!r}; pools: {known}", ExitCode.NO_MATCH)
    return chosen


def match_hosts(hosts: Sequence[Host], key: str) -> list[Host]:
    return [h for h in hosts if key in (h.name, h.ref, h.uuid)]


def find_host(loaded: Sequence[Loaded], pools: Sequence[PoolConfig], key: str, code: ExitCode) -> tuple[Loaded, Host]:
    """The one host ``key`` (name, ref or UUID) names in the loaded pools; ``code`` is the exit
    code of pools that failed to load (their failure is printed already)."""
    found = [(p, h) for p in loaded for h in match_hosts(p.inventory.hosts, key)]
    if not found:
        raise nothing_named("host", key, loaded, pools, code)
    if len(found) > 1:
        where = ", ".join(f"{p.config.name} ({h.ref})" for p, h in found)
        raise Failure(f"{key!r} names {len(found)} hosts: {where}; use --pool, or give a uuid", ExitCode.NO_MATCH)
    return found[0]


def host_in(pool: Loaded, key: str) -> Host:
    """The one host ``key`` names in ``pool``."""
    hosts = match_hosts(pool.inventory.hosts, key)
    if len(hosts) != 1:
        known = ", ".join(sorted(h.name for h in pool.inventory.hosts))
        many = "no" if not hosts else "several"
        raise Failure(f"pool {pool.config.name!r} has {many} host(s) named {key!r}; hosts: {known}", ExitCode.NO_MATCH)
    return hosts[0]


def nothing_named(
    what: str, key: str, loaded: Sequence[Loaded], pools: Sequence[PoolConfig], code: ExitCode
) -> Failure:
    """Nothing is called ``key`` where poolctl could look. When no pool loaded, nothing was
    searched: the pools' own errors (printed already) are the whole story, and "no VM named
    web-02" after a refused login would be a claim poolctl cannot make."""
    if not loaded:
        return Failure("", code or ExitCode.FAILED)
    names = {lp.config.name for lp in loaded}
    searched = ", ".join(shown(n) for n in sorted(names))
    failed = [shown(p.name) for p in pools if p.name not in names]
    skipped = f"; not searched: {', '.join(failed)} (see above)" if failed else ""
    return Failure(f"no {what} named {quoted(key)} in {searched}{skipped}", code or ExitCode.NO_MATCH)
