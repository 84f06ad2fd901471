"""A binding's keys as the user presses them now: its default, or what the config's [keys] made it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from textual.app import App
from textual.binding import Binding


def keys_of(binding: Binding, keymap: Mapping[str, str]) -> str:
    """The binding's keys, comma-separated as in Textual (``"n,escape"``), after the key map."""
    return keymap.get(binding.id, binding.key) if binding.id else binding.key


def shown(app: App[Any], keys: str) -> str:
    """``"n,escape"`` as the footer writes keys (``"n, esc"``): an empty entry shows as nothing."""
    return ", ".join(app.get_key_display(Binding(k.strip(), "")) for k in keys.split(",") if k.strip())


def shown_for(app: App[Any], bindings: Iterable[Binding], keymap: Mapping[str, str], binding_id: str) -> str:
    """The keys of the binding with ``binding_id`` as shown."""
    default = next((b.key for b in bindings if b.id == binding_id), "")
    return shown(app, keymap.get(binding_id, default))
