"""Domain ids: each start, reboot or migration gives the VM a fresh domid, as Xen does."""

from __future__ import annotations

import itertools

_domids = itertools.count(1)


def next_domid() -> int:
    return next(_domids)
