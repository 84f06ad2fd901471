"""Starting a migration: the one XAPI call poolctl must never send twice, and what to do when
its reply is lost.

``Async.VM.pool_migrate`` answers with a task at once. When the connection drops before that
answer, poolctl cannot tell whether XAPI got the call. Sending it again (what xmlrpc.client
does by itself) starts a second migration: XAPI refuses it with OTHER_OPERATION_IN_PROGRESS,
and the first one moves the VM while poolctl reports a failure. So the call goes out once
(``no_resend``), and after an ambiguous start the VM's ``current_operations`` tell: a
``pool_migrate`` task on it is the move (poolctl's pre-check saw the VM idle), followed like
any other; none after a few seconds, with the VM still where it was, means XAPI never got it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import XenAPI

from poolctl.backends.base import BackendError, ConnectionLost
from poolctl.backends.xen.connection import Connector, no_resend
from poolctl.backends.xen.errors import is_connection_error

log = logging.getLogger("poolctl.backends.xen")

FIND_TASK_S = 3.0  # how long XAPI gets to list a call it received among the VM's operations
FIND_CONTACT_S = 30.0  # how long poolctl tries to reach XAPI to learn whether the move started
FIND_POLL_S = 0.2


def start_migration(
    session: XenAPI.Session,
    connector: Connector,
    vm: str,
    name: str,
    host: str,
    live: bool,
    send: Callable[[], object] | None = None,
    op: str = "pool_migrate",
) -> tuple[str, bool]:
    """The task of the migration of ``vm`` to ``host``, and whether its start was ambiguous
    (found, not answered). XAPI's refusals are raised as ``XenAPI.Failure``; a start XAPI
    never received is a ``BackendError`` saying nothing moved. ``send`` and ``op``: another
    Async call that moves the VM (``VM.migrate_send``) and the operation it lists on the VM."""
    try:
        with no_resend(session):
            if send is not None:
                return str(send()), False
            return str(session.xenapi.Async.VM.pool_migrate(vm, host, {"live": "true" if live else "false"})), False
    except XenAPI.Failure:
        raise
    except Exception as exc:
        if not is_connection_error(exc):
            raise
        log.warning(
            "pool %s: the reply to the start of the migration of %s was lost (%s); asking XAPI whether it started",
            connector.config.name,
            name,
            type(exc).__name__,
        )
    task, resident = find_started(lambda: session.xenapi.VM.get_record(vm), connector, name, op)
    if task is None and resident == host:
        # it ran and ended while poolctl was asking: no task to follow, the VM is where it was sent
        log.warning("pool %s: %s already runs on the destination", connector.config.name, name)
        return "", True
    if task is None:
        raise BackendError(
            f"pool {connector.config.name!r}: the reply to the start of the migration of {name} was lost, "
            "and XAPI runs no migration of it: nothing moved",
            code="START_LOST",
            host=connector.where,
        )
    log.warning("pool %s: following the migration XAPI runs for %s (task %s)", connector.config.name, name, task)
    return task, True


def find_started(
    read_vm: Callable[[], dict[str, object]], connector: Connector, name: str, op: str = "pool_migrate"
) -> tuple[str | None, str]:
    """(the ``pool_migrate`` task among the VM's current operations, or None when XAPI lists
    none for ``FIND_TASK_S`` of answers; the host the VM is resident on). Contact lost for
    longer than ``FIND_CONTACT_S``: that is said, never guessed."""
    answered_since: float | None = None
    lost_since = time.monotonic()
    while True:
        try:
            rec = read_vm()
        except Exception as exc:
            if not is_connection_error(exc) or time.monotonic() - lost_since > FIND_CONTACT_S:
                raise ConnectionLost(
                    f"pool {connector.config.name!r}: the reply to the start of the migration of {name} was lost "
                    "and XAPI cannot be asked whether it started: check the pool before trying again",
                    code="START_UNKNOWN",
                    host=connector.where,
                ) from None
            time.sleep(FIND_POLL_S)
            continue
        lost_since = time.monotonic()
        ops = rec.get("current_operations")
        resident = str(rec.get("resident_on") or "")
        for task, listed in ops.items() if isinstance(ops, dict) else ():
            if str(listed) == op:
                return str(task), resident
        answered_since = answered_since or time.monotonic()
        if time.monotonic() - answered_since > FIND_TASK_S:
            return None, resident
        time.sleep(FIND_POLL_S)
