"""Messages (alerts) for the administrator, e.g. VM_MIGRATED: as in xapi they live outside the
object database (xapi_message.ml keeps them on disk), so they are not in event.from's
valid_ref_counts. Each takes a database generation when created, as in xapi, which event.from
uses as the message half of its token."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from . import errors
from .db import Database, new_ref, new_uuid
from .schema import Record

# Api_messages: (name, priority)
VM_MIGRATED = ("VM_MIGRATED", 5)
# the message class enum (datamodel.ml, Message.cls) -> the database class its obj_uuid names
CLASSES = {"VM": "VM", "Host": "host", "SR": "SR", "Pool": "pool", "VDI": "VDI"}


class Messages:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock = threading.Lock()
        self._records: dict[str, Record] = {}
        self._generation: dict[str, int] = {}  # ref -> the generation it was created at
        self._deleted: list[tuple[int, str]] = []  # (generation, ref) of each destroyed message

    def create(self, name: str, priority: int, cls: str, obj_uuid: str, body: str) -> str:
        ref = new_ref()
        rec: Record = {
            "uuid": new_uuid(),
            "name": name,
            "priority": int(priority),
            "cls": cls,
            "obj_uuid": obj_uuid,
            # full precision here so get_since can tell messages of the same second apart;
            # the wire carries whole seconds, as xapi's does
            "timestamp": datetime.now(UTC),
            "body": body,
        }
        with self._db.lock, self._lock:
            self._records[ref] = rec
            self._generation[ref] = self._db.bump()
        return ref

    def changes_since(self, generation: int) -> list[tuple[int, str, Record | None]]:
        """(generation, ref, record) of the messages created after `generation` and still there,
        then (generation, ref, None) of those destroyed since (Xapi_message.get_since_for_events)."""
        with self._lock:
            created: list[tuple[int, str, Record | None]] = [
                (gen, ref, dict(self._records[ref])) for ref, gen in self._generation.items() if gen > generation
            ]
            deleted = [(gen, ref, None) for gen, ref in self._deleted if gen > generation]
        return [*sorted(created, key=lambda item: item[0]), *deleted]

    def destroy(self, ref: str) -> None:
        with self._db.lock, self._lock:
            if self._records.pop(ref, None) is None:
                raise errors.handle_invalid("message", ref)
            del self._generation[ref]
            self._deleted.append((self._db.bump(), ref))

    def record(self, ref: str) -> Record:
        with self._lock:
            rec = self._records.get(ref)
            if rec is None:
                raise errors.handle_invalid("message", ref)
            return dict(rec)

    def by_uuid(self, uuid: str) -> str:
        with self._lock:
            for ref, rec in self._records.items():
                if rec["uuid"] == uuid:
                    return ref
        raise errors.uuid_invalid("message", uuid)

    def refs(self) -> list[str]:
        with self._lock:
            return list(self._records)

    def all_records(
        self, since: datetime | None = None, cls: str | None = None, obj_uuid: str | None = None
    ) -> dict[str, Record]:
        """Messages newer than `since` (xapi: strictly later), optionally only one object's."""
        with self._lock:
            return {
                ref: dict(rec)
                for ref, rec in self._records.items()
                if (since is None or rec["timestamp"] > since)
                and (cls is None or (rec["cls"] == cls and rec["obj_uuid"] == obj_uuid))
            }
