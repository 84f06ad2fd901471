"""The vocabulary every backend translates its hypervisor into.

All models are frozen: a change is a new object delivered through a ``Change``,
never an in-place edit, so the UI can compare old and new rows cheaply.
References (``ref``) are opaque strings owned by the backend that made them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

GiB = 1024**3
MiB = 1024**2


# One ``__pydantic_fields_set__`` per set of given fields, shared by every instance that has it.
# Pydantic gives each instance a set of its own (~730 bytes): with a disk, a CD drive and a nic
# per VM that was 29 MB of the 44 MB the models of 10,000 VMs take. Frozen models never add to
# the set (``model_copy`` copies it first), so sharing it is safe.
_FIELDS_SETS: dict[frozenset[str], set[str]] = {}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def model_post_init(self, _context: object) -> None:
        given = self.__pydantic_fields_set__
        key = frozenset(given)
        shared = _FIELDS_SETS.get(key)
        if shared is None:
            # a copy of our own: ``model_construct(_fields_set=...)`` hands over the caller's set,
            # which the caller may change later
            shared = _FIELDS_SETS.setdefault(key, set(key))
        if shared is not given:
            object.__setattr__(self, "__pydantic_fields_set__", shared)


class PowerState(StrEnum):
    RUNNING = "running"
    HALTED = "halted"
    PAUSED = "paused"
    SUSPENDED = "suspended"
    UNKNOWN = "unknown"


class PowerOp(StrEnum):
    START = "start"
    SHUTDOWN = "shutdown"  # clean
    REBOOT = "reboot"  # clean
    SUSPEND = "suspend"
    RESUME = "resume"
    FORCE_OFF = "force_off"

    @property
    def verb(self) -> str:
        """The operation in words, for buttons, notifications and errors."""
        return POWER_VERBS[self][0]

    @property
    def asks_first(self) -> bool:
        """Whether the user confirms before it runs (it stops what the guest is doing)."""
        return POWER_VERBS[self][1]

    @property
    def applies_to(self) -> tuple[PowerState, ...]:
        """The power states a VM can be in for this operation to make sense."""
        return POWER_VERBS[self][2]


_ACTIVE = (PowerState.RUNNING,)
_SLEEPING = (PowerState.SUSPENDED, PowerState.PAUSED)
# op -> (verb, asks first, the states it applies to)
POWER_VERBS: dict[PowerOp, tuple[str, bool, tuple[PowerState, ...]]] = {
    PowerOp.START: ("Start", False, (PowerState.HALTED,)),
    PowerOp.SHUTDOWN: ("Shut down", True, _ACTIVE),
    PowerOp.REBOOT: ("Reboot", True, _ACTIVE),
    PowerOp.SUSPEND: ("Suspend", False, _ACTIVE),
    PowerOp.RESUME: ("Resume", False, _SLEEPING),
    PowerOp.FORCE_OFF: ("Force off", True, _ACTIVE + _SLEEPING),
}


class Pool(_Frozen):
    ref: str
    name: str
    backend: str
    master: str | None = None  # host ref, where the hypervisor has one
    description: str = ""


class Host(_Frozen):
    ref: str
    name: str
    uuid: str = ""  # the hypervisor's host UUID (poolctl's per-host records are keyed by it)
    address: str = ""
    enabled: bool = True  # False: no VM may start on it or move to it
    maintenance: bool = False  # disabled by an evacuation: the admin is working on it
    evacuated: tuple[str, ...] = ()  # UUIDs of the VMs the last evacuation moved away (for a restore)
    live: bool = True  # reachable by the hypervisor / us
    memory_total: int = 0  # bytes
    memory_free: int = 0  # bytes
    cpu_vendor: str = ""
    cpu_model: str = ""
    cpu_count: int = 0
    software_version: str = ""
    is_master: bool = False


class StorageRepository(_Frozen):
    ref: str
    name: str
    type: str  # lvmoiscsi, nfs, ext, dir, iscsi, iso, ...
    shared: bool = False
    size: int = 0  # bytes
    used: int = 0  # bytes
    hosts: tuple[str, ...] = ()  # host refs that see it
    content_type: str = ""  # "iso" for ISO libraries, "" for VM disks
    uuid: str = ""  # the hypervisor's id for it, when it has one (XAPI's SR uuid)


class Network(_Frozen):
    ref: str
    name: str
    bridge: str = ""
    hosts: tuple[str, ...] = ()  # host refs on which the network exists


class Disk(_Frozen):
    name: str
    device: str = ""  # xvda, vda, ...
    size: int = 0  # bytes
    sr: str | None = None  # storage repository ref; None when not on a known SR
    cdrom: bool = False


class Nic(_Frozen):
    device: str = ""
    mac: str = ""
    network: str | None = None  # network ref


class VM(_Frozen):
    ref: str
    uuid: str
    name: str
    power_state: PowerState = PowerState.UNKNOWN
    host: str | None = None  # resident host ref; None when halted
    vcpus: int = 0
    memory: int = 0  # bytes
    ips: tuple[str, ...] = ()
    disks: tuple[Disk, ...] = ()
    nics: tuple[Nic, ...] = ()
    allowed_operations: tuple[str, ...] = ()
    current_operations: tuple[str, ...] = ()
    description: str = ""
    # False while disks and nics are still being read (see Backend.first_inventory): they are
    # empty then, not known to be empty.
    devices_known: bool = True

    @property
    def networks(self) -> tuple[str, ...]:
        return tuple(n.network for n in self.nics if n.network)


class MigrationCheck(_Frozen):
    """Whether ``vm`` can move to ``host`` now, and if not, why (in words a user reads)."""

    vm: str
    host: str
    problems: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()  # the hypervisor's error codes behind the problems, when any
    copies: tuple[str, ...] = ()  # storage motion: a line per disk copied, and the estimate
    copy_bytes: int = 0  # storage motion: what the disk copy moves

    @property
    def ok(self) -> bool:
        return not self.problems


class MigrationPhase(StrEnum):
    PREPARING = "preparing"
    COPYING = "copying memory"
    # storage motion: XAPI's task does not say when the disks are done and the memory begins
    COPYING_STORAGE = "copying disks, then memory"
    STOP_AND_COPY = "stop-and-copy"
    FINISHING = "finishing"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (MigrationPhase.DONE, MigrationPhase.FAILED, MigrationPhase.CANCELLED)


class MigrationOptions(_Frozen):
    live: bool = True
    max_downtime_ms: int | None = Field(default=None, ge=1)
    bandwidth_mib_s: int | None = Field(default=None, ge=1)
    auto_converge: bool = False
    post_copy: bool = False  # allowed: the backend switches when the passes stop shrinking
    post_copy_now: bool = False  # switch right after the first pass (post_copy must be set)
    parallel: int | None = Field(default=None, ge=1, le=16)  # connections for the memory copy
    compress: bool = False
    copy_storage: bool = False
    # storage motion: (disk device, SR ref) pairs, ("*", SR ref) for every disk; disks not named stay
    disk_srs: tuple[tuple[str, str], ...] = ()
    # the network (ref, of the destination's pool) the move's traffic takes (Capabilities.migration_network)
    network: str | None = None
    # cross-pool: the name of the pool the destination host is in, linked with Backend.link_pool;
    # then the host, disk_srs' SRs and network are that pool's refs (Capabilities.cross_pool)
    to_pool: str | None = None


class MigrationProgress(_Frozen):
    phase: MigrationPhase
    fraction: float | None = Field(default=None, ge=0.0, le=1.0)
    bytes_done: int | None = None
    bytes_total: int | None = None
    cancellable: bool = False
    message: str = ""  # the hypervisor's words for a failure, or a note
    iteration: int | None = None
    dirty_rate: int | None = None  # bytes/s, when the hypervisor reports it
    # Contact with the hypervisor is lost: how this move ends is not known (yet); still trying.
    out_of_contact: bool = False


class MigrationResult(_Frozen):
    vm: str
    source: str  # host ref
    destination: str  # host ref
    # "unknown": contact was lost for longer than the backend kept trying; nothing was read
    outcome: Literal["success", "failed", "cancelled", "unknown"]
    host: str | None  # where the VM runs now
    error: str = ""  # the hypervisor's error, quoted, when not a success
    duration_s: float = 0.0
    downtime_ms: float | None = None  # as the hypervisor reports it, when it does
    # The hypervisor refused to start the move (the VM was busy, a check failed): nothing moved.
    refused: bool = False
    copied_bytes: int | None = None  # memory sent, when the hypervisor reports it
    copy_rate_bytes_s: float | None = None  # the copy's throughput, when reported
    passes: int | None = None  # pre-copy passes, when reported
    post_copy: bool = False  # the move switched to post-copy
    escalations: tuple[str, ...] = ()  # what the backend changed during the move, in words


InventoryObject = Pool | Host | StorageRepository | Network | VM
ObjectKind = Literal["pool", "host", "sr", "network", "vm"]


class Change(_Frozen):
    kind: Literal["added", "modified", "removed"]
    object_kind: ObjectKind
    ref: str
    obj: InventoryObject | None = None  # None only for "removed"


class Inventory(_Frozen):
    """A full snapshot of one pool."""

    pool: Pool
    hosts: tuple[Host, ...] = ()
    srs: tuple[StorageRepository, ...] = ()
    networks: tuple[Network, ...] = ()
    vms: tuple[VM, ...] = ()


class ConnectionStatus(StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    STALE = "stale"  # connected, but the pool has not answered for too long: the data may be old
    LOST = "lost"  # retrying with back-off
    FAILED = "failed"  # given up (bad credentials, bad config)
    CLOSED = "closed"


class ConnectionState(_Frozen):
    pool: str  # pool name from the config
    status: ConnectionStatus
    host: str = ""  # which host the state is about, when one is
    message: str = ""
    retry_in_s: float | None = None
