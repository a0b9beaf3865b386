"""Topic kinds and who may subscribe to them.

A domain app registers a kind with an authorisation function
``(user, ident) -> bool`` (run in a worker thread, may query the database).
The hub itself knows only ``user:<id>``: a user's own notification topic."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Authorize = Callable[[Any, str], bool]


class InvalidTopic(Exception):
    """Raised by an authorisation function for an ident that cannot name
    anything of its kind (``conv:<30 digits>``, ``conv:007``): the subscriber
    gets ``topic.invalid``, not ``topic.forbidden``."""


def numeric_ident(ident: str) -> int:
    """A canonical positive bigint id (no sign, no leading zero), else ``InvalidTopic``."""
    if not ident.isdigit() or ident[0] == "0" or len(ident) > 19 or int(ident) > 2**63 - 1:
        raise InvalidTopic(ident)
    return int(ident)


_registry: dict[str, Authorize] = {}


def register_topic(kind: str, authorize: Authorize) -> None:
    if kind in _registry and _registry[kind] is not authorize:
        raise ValueError(f"topic kind {kind!r} registered twice")
    _registry[kind] = authorize


def authorize(user: Any, topic_kind: str, ident: str) -> bool:
    check = _registry.get(topic_kind)
    return bool(check and check(user, ident))


register_topic("user", lambda user, ident: numeric_ident(ident) == user.pk)
