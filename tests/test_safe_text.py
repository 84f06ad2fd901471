"""poolctl.safe_text: what an untrusted string looks like once it may be drawn."""

from __future__ import annotations

import pytest

from poolctl.safe_text import LINE_LIMIT, NAME_LIMIT, quoted, shown, shown_line, shown_lines


@pytest.mark.parametrize(
    "raw,want",
    [
        ("web-01", "web-01"),
        ("\x1b]0;pwned\x07osc-title", "\\x1b]0;pwned\\x07osc-title"),
        ("\x1b[2J", "\\x1b[2J"),
        ("a\nb\tc\rd\x00", "a\\x0ab\\x09c\\x0dd\\x00"),
        ("del\x7f c1\x9b", "del\\x7f c1\\x9b"),
        ("web\u200b-01", "web<U+200B>-01"),
        ("\u202eexe.txt", "<U+202E>exe.txt"),
        ("\u2066iso\u2069", "<U+2066>iso<U+2069>"),
        ("no\u00a0break", "no<U+00A0>break"),
        ("\ufeffbom", "<U+FEFF>bom"),
        ("filler\u3164", "filler<U+3164>"),
        ("lone \ud800", "lone <U+D800>"),
        ("日本語 ünïcode ✓", "日本語 ünïcode ✓"),  # printable stays as it is
        ("[bold]x[/]", "[bold]x[/]"),  # markup is no business of the escaper: widgets draw text, not markup
    ],
)
def test_controls_and_invisibles_are_shown(raw, want):
    assert shown(raw) == want


def test_long_text_is_cut_with_a_marker_saying_how_much():
    out = shown("x" * 10_000)
    assert len(out) == NAME_LIMIT
    assert out.endswith("…(+9934 chars)")
    assert out.startswith("x" * 60)
    assert len(shown_line("y" * 10_000_000)) == LINE_LIMIT
    assert shown("x" * NAME_LIMIT) == "x" * NAME_LIMIT  # exactly at the limit: whole
    assert shown("x" * 10_000, None) == "x" * 10_000


def test_the_cut_counts_escapes_and_never_splits_one():
    out = shown("\x1b" * 100)
    assert len(out) <= NAME_LIMIT
    body, marker = out.split("…")
    assert body == "\\x1b" * (len(body) // 4)
    assert marker == f"(+{100 - len(body) // 4} chars)"


def test_shown_is_idempotent_and_quoted_quotes():
    for raw in ("\x1b[2J", "web\u200b-01", "z" * 500):
        assert shown(shown(raw)) == shown(raw)
    assert quoted("a\x07") == "'a\\x07'"


def test_shown_lines_keeps_meant_line_breaks_only():
    assert shown_lines("one\x1b\ntwo\u202e") == "one\\x1b\ntwo<U+202E>"
    many = shown_lines("\n".join(["l"] * 50), max_lines=3)
    assert many.splitlines() == ["l", "l", "l", "…(+47 lines)"]
