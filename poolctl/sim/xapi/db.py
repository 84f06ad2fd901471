"""The object database: records by class and ref, a uuid index, and a generation log for event.from.

Every mutation bumps one global generation (as XAPI's db does) and appends the touched ref to a log,
so event.from(token) is a scan of the log since the token's generation.

Records are copy-on-write below the top level: nested lists and dicts are replaced, never mutated
in place, so a shallow copy taken under the lock can be marshalled after the lock is released.
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid as uuidlib
from collections.abc import Callable
from typing import Any

from . import errors
from .schema import Record
from .wire import Records

CLASSES: tuple[str, ...] = (
    "pool",
    "host",
    "host_metrics",
    "SR",
    "PBD",
    "VDI",
    "VBD",
    "VM",
    "VM_metrics",
    "VM_guest_metrics",
    "VIF",
    "network",
    "PIF",
    "task",
    "host_cpu",
    "console",
    "VLAN",
    "blob",
    "Certificate",
    "Repository",
    "secret",
)
CLASS_BY_LOWER = {c.lower(): c for c in CLASSES}
NULL_REF = "OpaqueRef:NULL"
_OUTSIDE = ""  # logged for generations taken by things kept outside the tables (messages)


_rng = random.Random(int.from_bytes(os.urandom(16), "big"))
_V4 = (0x4000 << 64) | (0x8000 << 48)
_V4_MASK = ~((0xF000 << 64) | (0xC000 << 48))


def _fast_uuid4() -> str:
    # uuid.uuid4() is ~10x slower; a 64-host, 10,000-VM pool needs ~140,000 of these
    h = f"{(_rng.getrandbits(128) & _V4_MASK) | _V4:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_ref() -> str:
    """An object reference (not a secret: session refs come from secret_ref)."""
    return f"OpaqueRef:{_fast_uuid4()}"


def secret_ref() -> str:
    return f"OpaqueRef:{uuidlib.uuid4()}"


def new_uuid() -> str:
    return _fast_uuid4()


class Change:
    """One object that changed since a generation, as event.from reports it."""

    __slots__ = ("op", "cls", "ref", "gen", "snapshot")

    def __init__(self, op: str, cls: str, ref: str, gen: int, snapshot: Record | None) -> None:
        self.op, self.cls, self.ref, self.gen, self.snapshot = op, cls, ref, gen, snapshot


class Database:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.tables: dict[str, dict[str, Record]] = {c: {} for c in CLASSES}
        self._by_uuid: dict[str, str] = {}
        self._class_of: dict[str, str] = {}
        self._created: dict[str, int] = {}
        self._tombstones: dict[str, tuple[str, int]] = {}  # ref -> (class, created generation)
        self._log: list[str] = []  # _log[g - 1] is the ref touched at generation g
        self._stamp: dict[str, int] = {}  # ref -> generation of its last change
        self.xml_cache: dict[str, tuple[int, str]] = {}  # see wire.Records
        self.json_cache: dict[str, tuple[int, str]] = {}
        self.generation = 0
        self.closed = False
        # what xapi keeps outside its database (files, daemons' state): PoolState.settings
        self.settings: dict[str, object] = {}

    # -- mutation -------------------------------------------------------------------------
    def _bump(self, ref: str) -> int:
        self.generation += 1
        self._log.append(ref)
        self._stamp[ref] = self.generation
        self.cond.notify_all()
        return self.generation

    def create(self, cls: str, record: Record, ref: str | None = None) -> str:
        with self.lock:
            ref = ref or new_ref()
            if not record.get("uuid"):
                record["uuid"] = new_uuid()
            self.tables[cls][ref] = record
            self._class_of[ref] = cls
            self._by_uuid[record["uuid"]] = ref
            self._created[ref] = self._bump(ref)
            return ref

    def set(self, cls: str, ref: str, **fields: object) -> None:
        with self.lock:
            rec = self.get(cls, ref)
            changed = {k: v for k, v in fields.items() if rec.get(k) != v}
            if changed:
                rec.update(changed)
                self._bump(ref)

    def add_to(self, cls: str, ref: str, field: str, item: object) -> None:
        with self.lock:
            current = self.get(cls, ref)[field]
            if item not in current:
                self.set(cls, ref, **{field: [*current, item]})

    def remove_from(self, cls: str, ref: str, field: str, item: object) -> None:
        with self.lock:
            current = self.get(cls, ref)[field]
            if item in current:
                self.set(cls, ref, **{field: [x for x in current if x != item]})

    def set_key(self, cls: str, ref: str, field: str, key: str, value: object | None) -> None:
        """Set (or with None, remove) one key of a map field."""
        with self.lock:
            current = dict(self.get(cls, ref)[field])
            if value is None:
                current.pop(key, None)
            else:
                current[key] = value
            self.set(cls, ref, **{field: current})

    def bump(self) -> int:
        """Take a generation for a change outside the tables (xapi gives each message one),
        waking long-polls; event.from's table scan skips it."""
        with self.lock:
            return self._bump(_OUTSIDE)

    def touch(self, cls: str, ref: str) -> int:
        with self.lock:
            self.get(cls, ref)
            return self._bump(ref)

    def destroy(self, cls: str, ref: str) -> None:
        with self.lock:
            rec = self.get(cls, ref)
            del self.tables[cls][ref]
            self._by_uuid.pop(rec["uuid"], None)
            del self._class_of[ref]
            self._tombstones[ref] = (cls, self._created.pop(ref))
            self.xml_cache.pop(ref, None)
            self.json_cache.pop(ref, None)
            self._bump(ref)

    # -- reads ------------------------------------------------------------------------------
    def get(self, cls: str, ref: str) -> Record:
        """The live record (callers hold the lock and do not mutate nested values)."""
        try:
            return self.tables[cls][ref]
        except (KeyError, TypeError):
            raise errors.handle_invalid(cls, str(ref)) from None

    def exists(self, cls: str, ref: str) -> bool:
        return ref in self.tables[cls]

    def snapshot(self, cls: str, ref: str) -> Record:
        with self.lock:
            return dict(self.get(cls, ref))

    def field(self, cls: str, ref: str, name: str) -> Any:
        with self.lock:
            return self.get(cls, ref)[name]

    def refs(self, cls: str) -> list[str]:
        with self.lock:
            return list(self.tables[cls])

    def all_records(self, cls: str) -> Records:
        with self.lock:
            out = Records({ref: dict(rec) for ref, rec in self.tables[cls].items()})
            stamp = self._stamp
            out.stamps = {ref: stamp[ref] for ref in out}
        out.cache = self.xml_cache
        out.json_cache = self.json_cache
        return out

    def by_uuid(self, cls: str, uuid: str) -> str:
        with self.lock:
            ref = self._by_uuid.get(uuid)
            if ref is None or self._class_of.get(ref) != cls:
                raise errors.uuid_invalid(cls, uuid)
            return ref

    def find(self, cls: str, pred: Callable[[Record], bool]) -> list[str]:
        with self.lock:
            return [ref for ref, rec in self.tables[cls].items() if pred(rec)]

    def counts(self) -> dict[str, int]:
        with self.lock:
            return {cls.lower(): len(t) for cls, t in self.tables.items()}

    # -- events -----------------------------------------------------------------------------
    def changes_since(self, since: int, wanted: Callable[[str, str], bool]) -> tuple[list[Change], int]:
        """Coalesced changes after generation `since` (xapi_event.from_inner semantics):
        one event per object, `add` if created since, else `mod`, `del` if it existed before."""
        with self.lock:
            last: dict[str, int] = {}
            log = self._log
            for gen in range(len(log), since, -1):
                ref = log[gen - 1]
                if ref not in last:
                    last[ref] = gen
            out: list[Change] = []
            for ref, gen in sorted(last.items(), key=lambda kv: kv[1]):
                cls = self._class_of.get(ref)
                if cls is not None:
                    if not wanted(cls, ref):
                        continue
                    op = "add" if self._created[ref] > since else "mod"
                    out.append(Change(op, cls, ref, gen, dict(self.tables[cls][ref])))
                elif ref is not _OUTSIDE:
                    dead_cls, created = self._tombstones[ref]
                    if created <= since and wanted(dead_cls, ref):
                        out.append(Change("del", dead_cls, ref, gen, None))
            return out, self.generation

    def wait_beyond(self, since: int, deadline: float, alive: Callable[[], bool]) -> None:
        """Block until the generation moves past `since`, the deadline passes, `alive()` is
        false or the database is closed."""
        with self.cond:
            while self.generation <= since and not self.closed and alive():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self.cond.wait(remaining)

    def wake_all(self) -> None:
        with self.cond:
            self.cond.notify_all()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()
