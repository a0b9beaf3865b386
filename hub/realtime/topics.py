"""Topic kinds and who may subscribe to them.

A domain app registers a kind with an authorisation function
``(user, ident) -> bool`` (run in a worker thread, may query the database).
The hub itself knows only ``user:<id>``: a user's own notification topic."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Authorize = Callable[[Any, str], bool]

_registry: dict[str, Authorize] = {}


def register_topic(kind: str, authorize: Authorize) -> None:
    if kind in _registry and _registry[kind] is not authorize:
        raise ValueError(f"topic kind {kind!r} registered twice")
    _registry[kind] = authorize


def authorize(user: Any, topic_kind: str, ident: str) -> bool:
    check = _registry.get(topic_kind)
    return bool(check and check(user, ident))


register_topic("user", lambda user, ident: str(user.pk) == ident)
