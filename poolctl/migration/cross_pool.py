"""A move to a host of another configured pool (cross-pool), as `poolctl migrate POOL/HOST` and
the TUI's migrate dialog both make it: the destination pool linked to the source's backend, the
host named ``POOL/HOST``, and the options the pre-check and the move share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from poolctl.backends.base import Backend, Unsupported
from poolctl.model import Host, MigrationOptions, Network, StorageRepository
from poolctl.safe_text import quoted

# the fields a move's destination sets on the tuner's options (the backend refuses what it lacks)
PLACING = ("disk_srs", "network", "to_pool")


def label(pool: str | None, host: str) -> str:
    """A destination host as people read it: ``POOL/HOST`` when it is another pool's."""
    return f"{pool}/{host}" if pool else host


def link(source: Backend, destination: Backend) -> None:
    """Make ``destination``'s pool a destination of ``source``'s moves; raises ``Unsupported``
    saying why not (the backend has no cross-pool moves, or not to that pool)."""
    if not source.capabilities.cross_pool:
        raise Unsupported(
            f"pool {quoted(source.config.name)}: the {source.config.backend} backend cannot move a VM to another pool"
        )
    source.link_pool(destination)


def move_options(
    *, disk_srs: Sequence[tuple[str, str]] = (), network: str | None = None, to_pool: str | None = None
) -> MigrationOptions:
    """The options of the pre-check (``Backend.check_move``): only the fields given are set."""
    fields: dict[str, object] = {"disk_srs": tuple(disk_srs)} if disk_srs else {}
    if network is not None:
        fields["network"] = network
    if to_pool is not None:
        fields["to_pool"] = to_pool
    return MigrationOptions.model_validate(fields)


def placing(options: MigrationOptions) -> dict[str, object]:
    """The fields of ``options`` that say where the move goes, for the tuner's options."""
    return {f: getattr(options, f) for f in PLACING if f in options.model_fields_set}


@dataclass(frozen=True)
class Destination:
    """A host a move may go to: of the VM's own pool, or of another linked pool."""

    host: Host
    srs: tuple[StorageRepository, ...]  # the SRs of the host's pool: where its disks may go
    pool: str | None = None  # another pool's name (MigrationOptions.to_pool); None: the VM's own
    networks: tuple[Network, ...] = ()  # the networks of the host's pool: which the move may take

    @property
    def key(self) -> str:
        """Unique among the destinations: refs of two pools may be alike."""
        return f"{self.pool}/{self.host.ref}" if self.pool else self.host.ref

    @property
    def label(self) -> str:
        return label(self.pool, self.host.name)
