"""Sessions: login, validity, logout, and the expiry hook tests use."""

from __future__ import annotations

import threading

from . import errors
from .db import NULL_REF, new_uuid, secret_ref
from .schema import Record, now


class Sessions:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, Record] = {}
        self._local: set[str] = set()  # slave_local_login sessions: valid on their host only

    def login(self, user: str, host: str, originator: str, local: bool = False) -> str:
        ref = secret_ref()
        if local:
            self._local.add(ref)
        rec = {
            "uuid": new_uuid(),
            "this_host": host,
            "this_user": NULL_REF,
            "last_active": now(),
            "pool": False,
            "other_config": {},
            "is_local_superuser": True,
            "subject": NULL_REF,
            "validation_time": now(),
            "auth_user_sid": "",
            "auth_user_name": user,
            "rbac_permissions": [],
            "tasks": [],
            "parent": NULL_REF,
            "originator": originator,
            "client_certificate": False,
        }
        with self._lock:
            self._records[ref] = rec
        return ref

    def check(self, ref: object) -> str:
        with self._lock:
            rec = self._records.get(ref) if isinstance(ref, str) else None
            if rec is None or not isinstance(ref, str):
                raise errors.session_invalid(str(ref))
            rec["last_active"] = now()
            return ref

    def is_local(self, ref: str | None) -> bool:
        with self._lock:
            return ref in self._local

    def valid(self, ref: str | None) -> bool:
        with self._lock:
            return ref in self._records

    def record(self, ref: str) -> Record:
        with self._lock:
            rec = self._records.get(ref)
            if rec is None:
                raise errors.handle_invalid("session", ref)
            return dict(rec)

    def set_other_config(self, ref: str, value: dict[str, str]) -> None:
        with self._lock:
            rec = self._records.get(ref)
            if rec is None:
                raise errors.handle_invalid("session", ref)
            rec["other_config"] = dict(value)

    def by_uuid(self, uuid: str) -> str:
        with self._lock:
            for ref, rec in self._records.items():
                if rec["uuid"] == uuid:
                    return ref
        raise errors.uuid_invalid("session", uuid)

    def logout(self, ref: str | None) -> None:
        with self._lock:
            if ref is not None:
                self._records.pop(ref, None)
                self._local.discard(ref)

    def expire_all(self) -> int:
        with self._lock:
            n = len(self._records)
            self._records.clear()
            self._local.clear()
            return n

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)


_MAX_AGENT = 64  # xapi_tracked_user_agents.ml: longer User-Agent strings are dropped
_MAX_AGENTS = 128


def track_user_agent(seen: dict[str, str], user_agent: str | None) -> None:
    """xapi_session.ml tracks the User-Agent of each login on the host that served it:
    "name/version comment" -> name: version, the last version seen kept, at most 128 names
    (the oldest dropped)."""
    if not user_agent or len(user_agent) > _MAX_AGENT:
        return
    name, _, version = user_agent.split(" ", 1)[0].partition("/")
    version = version.split("/", 1)[0]
    if name not in seen and len(seen) >= _MAX_AGENTS:
        seen.pop(next(iter(seen)))
    seen[name] = version
