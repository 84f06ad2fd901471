"""The `poolctl` command line: one module per command, `main` dispatching to them."""

from poolctl.cli.main import main

__all__ = ["main"]
