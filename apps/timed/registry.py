"""Owners of timed sessions (consultations, later rehab) register here in ``ready()``.

``on_extend(session, actor)`` runs inside the extension's transaction (the owner
bills it through commerce there; if it raises, nothing is written);
``on_end(session, reason)`` runs inside the end's transaction, in a savepoint
(the owner moves its own object, e.g. the visit to ended; if it raises, its
writes are rolled back and logged, and the session ends anyway: the hard stop
never waits for an owner)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import TimedCode, TimedError

OnEnd = Callable[[Any, str], None]
OnExtend = Callable[[Any, Any], None]


@dataclass(frozen=True)
class Owner:
    kind: str
    on_end: OnEnd | None = None
    on_extend: OnExtend | None = None


_owners: dict[str, Owner] = {}


def register_owner(kind: str, on_end: OnEnd | None = None, on_extend: OnExtend | None = None) -> Owner:
    """Register (or re-register, e.g. a test's owner) the hooks of ``kind``."""
    owner = Owner(kind=kind, on_end=on_end, on_extend=on_extend)
    _owners[kind] = owner
    return owner


def owner(kind: str) -> Owner:
    found = _owners.get(kind)
    if found is None:
        raise TimedError(TimedCode.OWNER_UNKNOWN, kind=kind)
    return found


def unregister_owner(kind: str) -> None:
    _owners.pop(kind, None)
