"""Exit codes and the one way a failure is put into words: shared by every command and the TUI."""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum

from poolctl.safe_text import shown_line


class ExitCode(IntEnum):
    """What a `poolctl` command's exit status means; the help texts are built from this table."""

    OK = 0
    FAILED = 1  # the operation failed, or a pool failed (the others were still served)
    USAGE = 2  # bad arguments, or a bad or missing config file
    AUTH = 3  # a pool refused the credentials
    NO_MATCH = 4  # no such pool, VM or host (or a name matches several)
    REFUSED = 5  # refused before anything started: the pre-checks found problems
    CANCELLED = 6  # cancelled while the hypervisor still allowed it
    UNKNOWN = 7  # contact with the pool was lost mid-move for longer than poolctl kept trying: outcome not known
    INTERRUPTED = 130  # Ctrl-C after the point of no return, or a second Ctrl-C


def help_text(meanings: Mapping[ExitCode, str]) -> str:
    """The "exit codes:" section of a command's help: the numbers come from ``ExitCode``, the
    words from the command (what a code means differs a little between commands)."""
    width = max(len(str(code.value)) for code in meanings)
    lines = [f"  {code.value:<{width}}  {text}" for code, text in sorted(meanings.items())]
    return "exit codes:\n" + "\n".join(lines) + "\n"


class Failure(Exception):
    """An expected failure with its exit code: printed as one line, never a traceback."""

    def __init__(self, message: str, code: ExitCode = ExitCode.USAGE):
        super().__init__(message)
        self.code = code


def describe(err: BaseException) -> str:
    """What the user reads about a failure: poolctl's own errors (a backend's, a config's) are
    worded for the user already; anything else is named by its type. Either may quote a
    hypervisor's words, so the line is made safe to show (``poolctl.safe_text``)."""
    if isinstance(err, UserFacing):
        return shown_line(err)
    return shown_line(f"{type(err).__name__}: {err}")


class UserFacing(Exception):
    """Base of the errors whose text is written for the user (names the host, field, line)."""
