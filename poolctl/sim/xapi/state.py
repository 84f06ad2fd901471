"""The pool's state below the API: the object database, sessions, tasks, messages, memory
accounting and the settings calls consult. Operations and API calls receive it (through registry.Context);
it knows nothing of them, so the arrows run one way: simulator -> api_* -> ops -> state."""

from __future__ import annotations

from .build import Guest
from .db import Database
from .memory import Memory
from .messages import Messages
from .sessions import Sessions
from .tasks import Tasks


class PoolState:
    """One simulated pool: what every call reads and changes. Thread-safe through `db.lock`."""

    def __init__(
        self,
        db: Database,
        *,
        master: str,
        host_refs: dict[str, str],
        guests: dict[str, Guest],
        password: str = "demo",
        username: str = "root",
        migration_seconds: float = 8.0,
        power_seconds: float = 0.0,
        storage_mib_s: float = 500.0,
        jsonrpc: bool = True,
    ) -> None:
        self.db = db
        self.sessions = Sessions()
        self.tasks = Tasks(db)
        self.memory = Memory(db)
        self.messages = Messages(db)
        self.master = master
        self.host_refs = host_refs  # name_label -> ref
        self.guests = guests  # VM ref -> what its guest agent reports
        self.username = username
        self.password = password  # tests change it to see a re-login fail
        self.migration_seconds = float(migration_seconds)
        self.power_seconds = float(power_seconds)
        self.storage_mib_s = float(storage_mib_s)  # simulated disk copy rate of storage motion
        self.served: tuple[str, int] | None = None  # (scheme, port) once served: host.migrate_receive's URLs
        self.jsonrpc = jsonrpc  # False: /jsonrpc answers 404, as XAPI before JSON-RPC did
        # legacy event.register/next: session -> (subscriptions, generation read up to)
        self.event_subscriptions: dict[str, tuple[list[str], int]] = {}
        # what xapi keeps outside its database (rrdd's recorded sources, local stores...)
        self.settings: dict[str, object] = db.settings
        for host in host_refs.values():
            self.memory.refresh(host)
