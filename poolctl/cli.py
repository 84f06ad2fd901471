"""The `poolctl` command: the TUI by default, plus subcommands for scripts.

Imports stay lazy: `poolctl --version` must not pay for Textual or a backend.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["simulate"]:
        from poolctl.backends.xapisim.cli import main as simulate

        return simulate(argv[1:])
    if argv[:1] in (["--version"], ["-V"]):
        from poolctl import __version__

        print(f"poolctl {__version__}")
        return 0
    print("poolctl: the TUI is not wired yet", file=sys.stderr)
    return 2
