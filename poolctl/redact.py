"""Secrets out of text: the one marker and the one scrubber for errors, logs and the audit log."""

from __future__ import annotations

from collections.abc import Iterable

MARKER = "<redacted>"
MIN_SECRET_LEN = 3  # shorter strings are everywhere in ordinary text: replacing them would garble it


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every non-trivial secret replaced by ``MARKER``."""
    for secret in secrets:
        if secret and len(secret) >= MIN_SECRET_LEN:
            text = text.replace(secret, MARKER)
    return text
