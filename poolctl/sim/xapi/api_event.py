"""event.from / event.inject with xapi's token format and coalescing (ocaml/xapi/xapi_event.ml).

Tokens are "%020d,%020d" (database generation, message generation); "" means "from the start",
so every live object of the subscribed classes comes back as `add`. Subscriptions are class
names (case-insensitive), "class/ref" or "*".

Messages are not in the database: a subscription that covers "message" gets an `add` for each
message created after the token's message generation and a `del` for each destroyed since
(xapi_event.ml's special case); the token's second half becomes the newest of those generations
(it stays as given while none come, and 0 without a subscription to messages, as in xapi).
"""

from __future__ import annotations

import time

from . import datamodel, errors
from .db import CLASS_BY_LOWER, Change
from .registry import Context, api
from .schema import Record
from .wire import Int32


def format_token(generation: int, message_generation: int = 0) -> str:
    return f"{generation:020d},{message_generation:020d}"


def parse_token(token: object) -> tuple[int, int]:
    """(database generation, message generation)."""
    text = str(token)
    if text == "":
        return 0, 0
    parts = text.split(",")
    try:
        if len(parts) != 2:
            raise ValueError(text)
        return int(parts[0]), int(parts[1])
    except ValueError:
        raise errors.event_from_token_parse_failure(text) from None


class Subscription:
    def __init__(self, classes: object) -> None:
        if not isinstance(classes, (list, tuple)):
            raise errors.field_type_error("classes")
        self.all = False
        self.classes: set[str] = set()
        self.objects: set[tuple[str, str]] = set()
        for item in classes:
            text = str(item)
            if text == "*":
                self.all = True
                continue
            parts = text.split("/", 1)
            if len(parts) == 1:
                self.classes.add(parts[0].lower())
            elif len(parts) == 2 and parts[0]:
                self.objects.add((parts[0].lower(), parts[1]))
            else:
                raise errors.event_subscription_parse_failure(text)

    def table_matches(self, table: str) -> bool:
        """Subscription.table_matches: would anything of `table` be selected?"""
        return self.all or table in self.classes or any(cls == table for cls, _ in self.objects)

    def __call__(self, cls: str, ref: str) -> bool:
        low = cls.lower()
        return self.all or low in self.classes or (low, ref) in self.objects


def _event(change: Change, stamp: str) -> dict[str, object]:
    ev: dict[str, object] = {
        "id": str(change.gen),
        "timestamp": stamp,
        "class": change.cls.lower(),
        "operation": change.op,
        "ref": change.ref,
    }
    if change.snapshot is not None:
        ev["snapshot"] = change.snapshot
    return ev


def ref_counts(ctx: Context) -> dict[str, Int32]:
    """xapi_event.from_inner: every table of the database, lowercased, with its size."""
    counts = ctx.db.counts()
    counts["session"] = len(ctx.pool.sessions)
    return {t.lower(): Int32(counts.get(t.lower(), 0)) for t in datamodel.db_tables()}


@api("event.from", "classes", "token", "timeout")
def event_from(ctx: Context, classes: list[str], token: str, timeout: float) -> dict[str, object]:
    subs = Subscription(classes)
    since, message_since = parse_token(token)
    try:
        deadline = time.monotonic() + float(timeout)
    except (TypeError, ValueError):
        raise errors.field_type_error("timeout") from None
    db, sessions = ctx.db, ctx.pool.sessions
    wants_messages = subs.table_matches("message")
    new_messages: list[tuple[int, str, Record | None]] = []
    while True:
        changes, generation = db.changes_since(since, subs)
        if wants_messages:
            new_messages = ctx.pool.messages.changes_since(message_since)
        if changes or new_messages or time.monotonic() >= deadline or db.closed or ctx.closing.is_set():
            break
        since = generation  # nothing relevant happened up to here
        db.wait_beyond(generation, deadline, lambda: sessions.valid(ctx.session) and not ctx.closing.is_set())
        if not sessions.valid(ctx.session):
            raise errors.session_invalid(str(ctx.session))
    stamp = f"{time.time():.6f}"
    events = [_event(c, stamp) for c in changes]
    for _, ref, rec in new_messages:
        event: dict[str, object] = {"id": "0", "timestamp": stamp, "class": "message", "ref": ref}
        event.update({"operation": "add", "snapshot": rec} if rec is not None else {"operation": "del"})
        events.append(event)
    message_token = max([message_since, *(gen for gen, _, _ in new_messages)]) if wants_messages else 0
    return {
        "events": events,
        "valid_ref_counts": ref_counts(ctx),
        "token": format_token(generation, message_token),
    }


@api("event.inject", "class", "ref")
def inject(ctx: Context, cls: str, ref: str) -> str:
    canonical_cls = CLASS_BY_LOWER.get(str(cls).lower())
    if canonical_cls is None or not ctx.db.exists(canonical_cls, ref):
        raise errors.handle_invalid(str(cls), str(ref))
    generation = ctx.db.touch(canonical_cls, ref)
    return format_token(generation - 1)


@api("event.get_current_id")
def get_current_id(ctx: Context) -> int:
    return ctx.db.generation
