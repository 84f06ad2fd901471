"""A backend's warnings on stderr as poolctl's own lines, for the commands but the TUI (which
shows them in its log). Apart from ``main``: logging is not imported before the first open."""

from __future__ import annotations

import logging
import sys


class WarningLines(logging.Handler):
    """A backend's warnings ("lost contact, retrying in 2 s") as poolctl's other lines are:
    ``poolctl: warning: …``, one line, made safe. Without a handler Python's last resort prints
    the bare message, which reads as if some other program said it."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from poolctl.safe_text import shown_line

            print(f"poolctl: {shown_line(f'{record.levelname.lower()}: {record.getMessage()}')}", file=sys.stderr)
        except Exception:
            self.handleError(record)


def install() -> None:
    logger = logging.getLogger("poolctl")
    if not any(isinstance(h, WarningLines) for h in logger.handlers):
        logger.addHandler(WarningLines(logging.WARNING))
