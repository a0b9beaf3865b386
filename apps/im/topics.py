"""The ``conv:<id>`` topic: members only; and the IM frames of the socket."""

from __future__ import annotations

from hub.realtime.topics import numeric_ident, register_topic

from .selectors import is_member


def _authorize(user: object, ident: str) -> bool:
    return is_member(user, numeric_ident(ident))


register_topic("conv", _authorize)

from . import realtime  # noqa: E402,F401  (registers im.* frame handlers)
