"""Frame handlers registered by domain apps (e.g. ``im.send``).

A handler is ``async (socket, frame) -> dict | None``; the return value becomes
the reply's ``data``. Raising ``hub.errors.ApiError`` sends an ``error`` frame
with its code. The hub itself makes no domain decisions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Handler = Callable[[Any, dict[str, Any]], Awaitable[dict[str, Any] | None]]

_handlers: dict[str, Handler] = {}


def register_handler(frame_type: str, handler: Handler) -> None:
    if "." not in frame_type:
        raise ValueError("domain frame types are prefixed, e.g. im.send")
    if frame_type in _handlers and _handlers[frame_type] is not handler:
        raise ValueError(f"frame type {frame_type!r} registered twice")
    _handlers[frame_type] = handler


def handler_for(frame_type: str) -> Handler | None:
    return _handlers.get(frame_type)
