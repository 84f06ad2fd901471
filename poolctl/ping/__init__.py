"""Measure a VM's reachability during live migration: fixed-rate probes, losses, longest gap.

Knows nothing of backends or the TUI. See `Pinger` for the API and `stats.py` for
what `longest_gap_s` means.
"""

from poolctl.ping.method import (
    AddressError,
    MethodChoice,
    MethodUnavailable,
    PingError,
    choose_method,
    detect_method,
    read_ping_group_range,
    resolve_address,
)
from poolctl.ping.pinger import (
    DEFAULT_HISTORY,
    DEFAULT_INTERVAL,
    DEFAULT_TIMEOUT,
    INTERVAL_MAX_S,
    INTERVAL_MIN_S,
    Pinger,
)
from poolctl.ping.stats import PingStats, Sample

__all__ = [
    "AddressError",
    "DEFAULT_HISTORY",
    "DEFAULT_INTERVAL",
    "DEFAULT_TIMEOUT",
    "INTERVAL_MAX_S",
    "INTERVAL_MIN_S",
    "MethodChoice",
    "MethodUnavailable",
    "PingError",
    "PingStats",
    "Pinger",
    "Sample",
    "choose_method",
    "detect_method",
    "read_ping_group_range",
    "resolve_address",
]
