"""The contract between poolctl and a hypervisor.

A backend translates one hypervisor's vocabulary into ``poolctl.model`` and back;
the TUI and the CLI talk to hypervisors only through this interface. Every call
may block (network round trips): callers run them in worker threads.
Backends never import Textual or the TUI package: the CLI and third parties use them too.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from poolctl.errors import UserFacing
from poolctl.model import (
    Change,
    ConnectionState,
    Inventory,
    MigrationCheck,
    MigrationOptions,
    MigrationProgress,
    MigrationResult,
    PowerOp,
)
from poolctl.poolconfig import PoolConfig


class BackendError(UserFacing):
    """A failure the user must read: ``str(err)`` names the host and quotes the hypervisor.

    ``code`` and ``params`` carry the hypervisor's own error (e.g. XAPI's
    ``HOST_NOT_ENOUGH_FREE_MEMORY`` and its parameter list) for callers that branch on it.
    """

    def __init__(self, message: str, *, code: str = "", params: tuple[str, ...] = (), host: str = ""):
        super().__init__(message)
        self.message = message
        self.code = code
        self.params = tuple(params)
        self.host = host


class AuthenticationError(BackendError):
    """Credentials refused: retrying will not help."""


class ConnectionLost(BackendError):
    """The hypervisor cannot be reached (now); retrying may help."""


class NotFound(BackendError):
    """The object named does not exist (any more)."""


class OperationRefused(BackendError):
    """The hypervisor refused an operation in the object's current state."""


class CancelRefused(OperationRefused):
    """The migration is past the point where it can be cancelled."""


class Unsupported(BackendError):
    """This backend, or this connection, cannot do that at all."""


@dataclass(frozen=True)
class Capabilities:
    """What the UI may offer for one connected pool.

    The class flags on ``Backend`` say what a backend can do in general; an instance
    may narrow them (libvirt's test driver cannot migrate) and says why in ``reason``.
    """

    live_migration: bool
    cancel: bool
    downtime_reporting: bool
    migration_options: frozenset[str] = field(default_factory=frozenset)
    host_maintenance: bool = False  # hosts can be disabled, enabled and evacuated
    storage_motion: bool = False  # a move may copy disks to other SRs (MigrationOptions.disk_srs)
    cross_pool: bool = False  # a move may go to a host of another linked pool (MigrationOptions.to_pool)
    migration_network: bool = False  # a move may be sent over a chosen network (MigrationOptions.network)
    reason: str = ""  # why live_migration is False, in words for the user


@dataclass(frozen=True)
class SwitchoverModel:
    """A backend's fixed costs of a live move, for the predictor (poolctl.migration.predict)."""

    setup_s: float = 2.0  # preparing and finishing, besides the memory copy
    device_state_ms: float = 10.0  # sending device state once the guest is paused
    resume_ms: float = 15.0  # the toolstack resuming the guest on the destination
    postcopy_switch_ms: float | None = None  # the pause of a switch to post-copy; None: no post-copy
    default_link_bytes_s: float = 110 * (1 << 20)  # assumed without past moves (1 GbE)
    default_downtime_ms: float = 300.0  # the hypervisor's own limit when none is set
    # an uncapped copy's last pass overshoots the limit by misjudging the link: the pause is at
    # least this (and at most 3 x the limit's share of it)
    uncapped_overshoot_ms: float = 0.0


ChangeCallback = Callable[[Change], None]
StateCallback = Callable[[ConnectionState], None]


class MigrationHandle(ABC):
    """One running migration. ``updates()`` blocks; run it in a worker thread."""

    # After losing contact with the hypervisor, how long ``updates()`` keeps trying to learn
    # how the move ended before it ends with the outcome "unknown" (the caller may change it).
    outcome_wait_s: float = 600.0

    def __init__(self, vm: str, source: str, destination: str):
        self.vm = vm
        self.source = source
        self.destination = destination

    @abstractmethod
    def updates(self) -> Iterator[MigrationProgress]:
        """Yield progress until the migration ends; the last item has a terminal phase."""

    @abstractmethod
    def cancel(self) -> None:
        """Ask the hypervisor to stop the move. Raises ``CancelRefused`` with the reason
        once the migration is past its cancellable phase."""

    @property
    @abstractmethod
    def result(self) -> MigrationResult | None:
        """The outcome, once ``updates()`` has ended; ``None`` before."""

    def stop_following(self) -> None:
        """poolctl stops watching (it is quitting): ``updates()`` ends soon without a terminal
        phase and lets go of what it holds; the migration itself goes on. By default
        ``updates()`` simply runs to the migration's end."""
        return None


class Backend(ABC):
    """One pool of one hypervisor kind, configured by an instance of its ``Config``."""

    NAME: ClassVar[str]
    # The settings a pool of this backend takes: a ``PoolConfig`` subclass with the backend's
    # own fields and checks. The config file's ``[[pool]]`` tables are validated against it.
    Config: ClassVar[type[PoolConfig]] = PoolConfig
    SUPPORTS_LIVE_MIGRATION: ClassVar[bool] = False
    IMPLEMENTS_CANCEL: ClassVar[bool] = False
    REPORTS_DOWNTIME: ClassVar[bool] = False
    # Names of MigrationOptions fields (besides ``live``) the backend honours.
    MIGRATION_OPTIONS: ClassVar[frozenset[str]] = frozenset()
    # disable_host / enable_host work: a disabled host takes no new VM (starts, arrivals)
    HOST_MAINTENANCE: ClassVar[bool] = False
    # what a move costs besides the copy, for predictions (measured per backend)
    SWITCHOVER: ClassVar[SwitchoverModel] = SwitchoverModel()
    # check_storage_migration works and migrate honours MigrationOptions.disk_srs
    STORAGE_MOTION: ClassVar[bool] = False
    # link_pool works and migrate honours MigrationOptions.to_pool (a host of another pool)
    CROSS_POOL: ClassVar[bool] = False
    # migrate honours MigrationOptions.network (the network the move's traffic takes)
    MIGRATION_NETWORK: ClassVar[bool] = False

    def __init__(self, config: PoolConfig):
        if not isinstance(config, self.Config):
            # e.g. a bare PoolConfig: the backend would fail later on a missing field
            raise TypeError(
                f"{type(self).__name__} is configured by {self.Config.__name__}, not {type(config).__name__} "
                "(poolctl.config.pool_config builds the right one)"
            )
        self.config: PoolConfig = config

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            live_migration=self.SUPPORTS_LIVE_MIGRATION,
            cancel=self.IMPLEMENTS_CANCEL,
            downtime_reporting=self.REPORTS_DOWNTIME,
            migration_options=self.MIGRATION_OPTIONS,
            host_maintenance=self.HOST_MAINTENANCE,
            storage_motion=self.STORAGE_MOTION,
            cross_pool=self.CROSS_POOL,
            migration_network=self.MIGRATION_NETWORK,
        )

    @abstractmethod
    def connect(self) -> None:
        """Log in / open connections. Raises ``AuthenticationError`` or ``ConnectionLost``."""

    @abstractmethod
    def close(self) -> None:
        """Stop watching, log out, release everything. Safe to call twice."""

    @abstractmethod
    def inventory(self) -> Inventory:
        """A full snapshot of the pool, loaded with bulk calls (never one call per object)."""

    def first_inventory(self) -> Inventory:
        """What a screen needs first, as soon as possible, in a number of calls that does not grow
        with the VMs. A backend may leave out what only per-VM calls give (disks and nics; on KVM
        also a VM's title and guest addresses): such a VM has ``devices_known`` False, keeps those
        fields at their defaults, and arrives whole as a change once ``watch()`` runs. By default
        the full ``inventory()``."""
        return self.inventory()

    @abstractmethod
    def watch(self, on_change: ChangeCallback, on_state: StateCallback) -> None:
        """Start delivering changes (and connection states) from the backend's own thread(s).

        Returns at once. Callbacks run on backend threads and must only hand the data
        over (e.g. post a message). Delivery stops on ``close()``. After a lost
        connection the backend retries with back-off and, once back, delivers a fresh
        snapshot as changes so the consumer's store converges.
        """

    def host_problems(self) -> list[str]:
        """Why hosts of this connected pool are not connected, one line each (a command prints
        them as warnings: the pool's other hosts were served). By default none."""
        return []

    def retry_now(self) -> None:
        """The user asks to try the pool's unreachable or refused hosts again now (a failed login
        or an untrusted host key is never retried without this). By default nothing: a backend
        with one connection is retried by its caller."""
        return None

    @abstractmethod
    def power(self, vm: str, op: PowerOp) -> None:
        """Run a power operation and return when the hypervisor has done it."""

    @abstractmethod
    def check_migration(self, vm: str, host: str) -> MigrationCheck:
        """Pre-check a move of ``vm`` to ``host``: each problem named in a user's words."""

    def check_storage_migration(
        self, vm: str, host: str, disk_srs: Sequence[tuple[str, str]], rate_mib_s: float
    ) -> MigrationCheck:
        """Pre-check a move of ``vm`` to ``host`` with its disks copied as ``disk_srs`` says
        (see ``MigrationOptions.disk_srs``): the problems, and in ``copies`` what is copied
        with an estimate at ``rate_mib_s`` (STORAGE_MOTION)."""
        raise Unsupported(f"pool {self.config.name!r}: the {self.NAME} backend cannot copy disks to other storage")

    def check_move(self, vm: str, host: str, options: MigrationOptions, rate_mib_s: float) -> MigrationCheck:
        """Pre-check the very move ``migrate(vm, host, options)`` would start: with
        ``options.to_pool`` a host of that linked pool, with ``options.network`` over that
        network, with ``disk_srs`` its disks copied (an estimate at ``rate_mib_s``)."""
        if options.to_pool is not None:
            raise Unsupported(f"pool {self.config.name!r}: the {self.NAME} backend cannot move a VM to another pool")
        if options.network is not None:
            raise Unsupported(f"pool {self.config.name!r}: the {self.NAME} backend cannot choose the migration network")
        if options.disk_srs:
            return self.check_storage_migration(vm, host, options.disk_srs, rate_mib_s)
        return self.check_migration(vm, host)

    def link_pool(self, other: Backend) -> None:
        """Make ``other``, a connected pool of the same backend, a destination of this pool's
        moves (CROSS_POOL): ``MigrationOptions.to_pool`` names it by its config name. The
        destination pool's own connection does its part (XAPI: host.migrate_receive), so no
        secret of it passes through the caller."""
        raise Unsupported(f"pool {self.config.name!r}: the {self.NAME} backend cannot move a VM to another pool")

    @abstractmethod
    def migrate(self, vm: str, host: str, options: MigrationOptions) -> MigrationHandle:
        """Start a live migration and return its handle at once (it runs on)."""

    def measure_dirty_rate(self, vm: str, seconds: int = 1) -> float | None:
        """How fast the running ``vm`` writes its memory, bytes/s, measured over ``seconds``
        (blocks that long); None when this backend cannot tell (the tuner then assumes less)."""
        return None

    # -- host maintenance (HOST_MAINTENANCE) ----------------------------------------------------

    def disable_host(self, host: str, *, maintenance: bool = False, evacuated: Sequence[str] = ()) -> None:
        """No new VM starts on ``host`` or moves to it. With ``maintenance`` the host is marked as
        being evacuated for work on it, with the UUIDs of the VMs moved away (``evacuated``) for a
        later restore; calling it again replaces that list. The inventory shows the new state."""
        raise Unsupported(f"pool {self.config.name!r}: the {self.NAME} backend cannot disable a host")

    def enable_host(self, host: str) -> tuple[str, ...]:
        """Take VMs again, maintenance mode cleared; returns the UUIDs the last evacuation moved
        away (empty when there was none), for ``host enable --restore``."""
        raise Unsupported(f"pool {self.config.name!r}: the {self.NAME} backend cannot enable a host")

    def evacuation_blockers(self, host: str) -> dict[str, tuple[str, ...]]:
        """The hypervisor's own verdict on emptying ``host``: vm ref -> why that VM cannot leave,
        in words. Empty when the hypervisor has no such check (the pre-checks then decide)."""
        return {}
