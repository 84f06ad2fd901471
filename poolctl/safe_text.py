"""Untrusted text (names and error strings from a hypervisor) made safe to put on a terminal.

A VM name is whatever someone with access to the pool typed. Written raw it can set the
terminal's title (``ESC ] 0 ; … BEL``), clear the screen (``ESC [ 2 J``), pose as another VM
(``web\\u200b-01`` looks like ``web-01``; a right-to-left override reverses what follows) or
make every table row 10,000 columns wide. Every place poolctl draws such a string (CLI
tables and error lines, TUI widgets and toasts, the history view) passes it through
``shown``; JSON output and the audit log keep the exact string (JSON escapes it).

How it looks, so a user can tell what is there:
- C0 controls, DEL and C1 controls as ``\\xNN`` (ESC is ``\\x1b``, BEL ``\\x07``, newline ``\\x0a``);
- every other character Python does not call printable (zero-width and bidi controls, other
  format characters, line/paragraph separators, spaces other than U+0020, surrogates,
  private-use and unassigned code points) as ``<U+XXXX>``, plus the few letters that draw
  nothing (Hangul fillers);
- longer than the limit: cut, ending in ``…(+N chars)`` saying how much was left out.
A backslash is left as it is: ``\\x1b`` typed by a person reads the same as an escaped ESC,
which misleads no terminal.
"""

from __future__ import annotations

import re

NAME_LIMIT = 80  # a name in a table, a tree, a title
LINE_LIMIT = 500  # an error line or a reason: long enough for XAPI's error parameters

# Letters (so "printable") that draw as nothing: posing as a space or as no character at all.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0")
_SUSPECT = re.compile("[\u115f\u1160\u3164\uffa0]")


def _escape(ch: str) -> str:
    code = ord(ch)
    if code < 0x20 or 0x7F <= code <= 0x9F:
        return f"\\x{code:02x}"
    if ch.isprintable() and ch not in _BLANK_LETTERS:
        return ch
    return f"<U+{code:04X}>"


def _marker(cut: int) -> str:
    return f"…(+{cut} chars)"


def shown(text: object, limit: int | None = NAME_LIMIT) -> str:
    """``text`` as it may be drawn: nothing in it acts on the terminal or hides, and it is at
    most ``limit`` characters (None: no limit)."""
    s = text if isinstance(text, str) else str(text)
    if (limit is None or len(s) <= limit) and s.isprintable() and not _SUSPECT.search(s):
        return s  # the common case: one C-level scan, no copy
    pieces: list[str] = []
    used = 0
    for ch in s:
        piece = _escape(ch)
        pieces.append(piece)
        used += len(piece)
        if limit is not None and used > limit:
            break  # a 10 MB string is not escaped whole to show 80 characters of it
    else:
        return "".join(pieces)
    assert limit is not None
    while pieces and used + len(_marker(len(s) - len(pieces))) > limit:
        used -= len(pieces.pop())
    return "".join(pieces) + _marker(len(s) - len(pieces))


def shown_line(text: object) -> str:
    """An error line or a reason: the same rules, a longer limit."""
    return shown(text, LINE_LIMIT)


def quoted(text: object, limit: int | None = NAME_LIMIT) -> str:
    """A name in a sentence, in quotes: ``'web-01'`` (what ``repr`` did, with a limit)."""
    return f"'{shown(text, limit)}'"


def shown_lines(text: object, limit: int | None = LINE_LIMIT, max_lines: int = 20) -> str:
    """Text whose line breaks are meant (a description, a toast poolctl wrote over lines):
    each line made safe on its own, at most ``max_lines`` of them."""
    lines = (text if isinstance(text, str) else str(text)).split("\n")
    kept = [shown(line, limit) for line in lines[:max_lines]]
    if len(lines) > max_lines:
        kept.append(f"…(+{len(lines) - max_lines} lines)")
    return "\n".join(kept)
