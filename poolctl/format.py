"""Small formatting helpers shared by the CLI and the TUI (sizes, host states); no Textual here."""

from __future__ import annotations

from poolctl.model import Host

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def size(n: int | None) -> str:
    """``4294967296`` -> ``"4.0 GiB"``; compact enough for a table column."""
    if n is None:
        return "?"
    value = float(n)
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            if unit == "B":
                return f"{int(value)} B"
            return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"
        value /= 1024
    return f"{n} B"  # unreachable; keeps type checkers calm


def host_state(host: Host) -> str:
    """A host's state in words: a user without colour must still see it."""
    if not host.live:
        return "down"
    if not host.enabled:
        return "maintenance" if host.maintenance else "disabled"
    return "up"


def short_size(n: int) -> str:
    """``46566129664`` -> ``"43G"``: for labels where every column counts."""
    value = float(n)
    for unit in ("B", "K", "M", "G", "T", "P"):
        if value < 1024 or unit == "P":
            return f"{value:.1f}{unit}" if value < 10 and unit != "B" else f"{value:.0f}{unit}"
        value /= 1024
    return f"{n}B"
