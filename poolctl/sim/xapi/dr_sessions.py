"""Sessions on another database (VDI.open_database, xapi_vdi_helpers.database_ref_of_vdi): a
read-only session whose calls read the database a metadata VDI holds, not the pool's own.
rpc.Dispatcher routes a call made with such a session to that database's PoolState."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from . import errors
from .db import Database

if TYPE_CHECKING:
    from .state import PoolState

# what a read-only session may call besides the getters (xapi marks these readonly for DR)
_ALLOWED = {
    "VM.recover",
    "VM.assert_can_be_recovered",
    "VM.get_SRs_required_for_recovery",
    "session.logout",
    "session.local_logout",
    "event.from",
    "system.listMethods",
}
_READ_PREFIXES = ("get_", "get_all", "get_record", "get_by_")


def foreign(pool: PoolState) -> dict[str, PoolState]:
    """session ref -> the PoolState of the database it was opened on."""
    return pool.settings.setdefault("foreign_sessions", {})  # type: ignore[return-value]


def clone_database(db: Database) -> Database:
    """A copy of every table, refs and uuids kept: what a redo log replays from a metadata VDI."""
    out = Database()
    with db.lock:
        for cls, table in db.tables.items():
            for ref, rec in table.items():
                out.create(cls, copy.deepcopy(rec), ref=ref)
    return out


def assert_allowed(name: str) -> None:
    """The read-only role: reads, and the recovery calls."""
    meth = name.split(".", 1)[1] if "." in name else name
    if name in _ALLOWED or meth.startswith(_READ_PREFIXES):
        return
    raise errors.XapiError(
        "RBAC_PERMISSION_DENIED",
        name,
        "No permission in user session. (Roles with this permission: pool-admin, pool-operator, vm-power-admin)",
    )
