"""The KVM hosts' opens started from the raw command line, before it is parsed.

Over a link a host's open is mostly waiting on the host; ``poolctl.preload`` starts it before
the config is validated, and this starts that before the command line's own modules and parser
(~15 ms): for the TUI (no command, at most ``--config``) and ``ls`` (its kind, ``--json``,
``--pool`` and ``--config``), the two that load every pool first. Anything else, or anything
this does not recognise, starts nothing here: the parsed command does it as before.
"""

from __future__ import annotations

from pathlib import Path

_KINDS = ("vms", "hosts", "srs", "networks")  # as cli.main's KINDS


def start(argv: list[str]) -> str | None:
    """Start the opens for ``argv`` if it is the TUI's or ``ls``'s: then "tui" or "ls", else None."""
    parsed = _scan(argv)
    if parsed is None:
        return None
    command, config, only = parsed
    from poolctl import preload

    preload.start(config, only=only or None)
    return command


def _scan(argv: list[str]) -> tuple[str, Path | None, list[str]] | None:
    command = "tui"
    config: Path | None = None
    only: list[str] = []
    kind_seen = False
    rest = list(argv)
    while rest:
        arg = rest.pop(0)
        name, eq, value = arg.partition("=")
        if name == "--config" or (command == "ls" and name == "--pool"):
            if not eq:
                if not rest or rest[0].startswith("-"):
                    return None  # argparse's error to give
                value = rest.pop(0)
            if not value:
                return None
            if name == "--config":
                config = Path(value)
            else:
                only.append(value)
        elif arg == "ls" and command == "tui":
            command = "ls"
        elif command == "ls" and arg == "--json":
            continue
        elif command == "ls" and arg in _KINDS and not kind_seen:
            kind_seen = True
        else:
            return None
    return command, config, only
