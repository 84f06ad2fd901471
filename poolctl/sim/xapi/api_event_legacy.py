"""The legacy event API: event.register / unregister / next (xapi_event.ml's Next module).

A session registers class subscriptions; next blocks until something they select changes and
returns those events (no token: the session remembers how far it has read). next without a
registration is SESSION_NOT_REGISTERED; a new registration starts from now, as xapi's does.
"""

from __future__ import annotations

import time

from . import errors
from .api_event import Subscription, _event
from .registry import Context, api


def _key(ctx: Context) -> str:
    return str(ctx.session)


@api("event.register", "classes")
def register(ctx: Context, classes: object) -> None:
    Subscription(classes)  # EVENT_SUBSCRIPTION_PARSE_FAILURE before anything changes
    subs = ctx.pool.event_subscriptions
    with ctx.db.lock:
        current, since = subs.get(_key(ctx), ([], ctx.db.generation))
        subs[_key(ctx)] = ([*(str(c) for c in classes), *current], since)  # type: ignore[attr-defined]


@api("event.unregister", "classes")
def unregister(ctx: Context, classes: object) -> None:
    gone = {str(c) for c in Subscription(classes).classes} | {str(c) for c in classes}  # type: ignore[attr-defined]
    subs = ctx.pool.event_subscriptions
    with ctx.db.lock:
        current, since = subs.get(_key(ctx), ([], ctx.db.generation))
        subs[_key(ctx)] = ([c for c in current if c not in gone and c.lower() not in gone], since)


@api("event.next")
def next_events(ctx: Context) -> list[dict[str, object]]:
    subs, db, sessions = ctx.pool.event_subscriptions, ctx.db, ctx.pool.sessions
    key = _key(ctx)
    if key not in subs:
        raise errors.XapiError("SESSION_NOT_REGISTERED", key[:24])  # xapi names the session's trackid
    while True:
        with db.lock:
            classes, since = subs[key]
            changes, generation = db.changes_since(since, Subscription(classes))
            subs[key] = (classes, generation)
        if changes:
            stamp = f"{time.time():.6f}"
            return [_event(c, stamp) for c in changes]
        if db.closed or ctx.closing.is_set():
            return []
        db.wait_beyond(
            generation, time.monotonic() + 30.0, lambda: sessions.valid(ctx.session) and not ctx.closing.is_set()
        )
        if not sessions.valid(ctx.session):
            raise errors.session_invalid(key)
