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


# Socket lifecycle hooks ``(event, user_id) -> None`` with event in
# {"online", "heartbeat", "offline"}; run on the hub's database pool.
LifecycleHook = Callable[[str, int], None]
_lifecycle: list[LifecycleHook] = []


def register_lifecycle_hook(hook: LifecycleHook) -> None:
    if hook not in _lifecycle:
        _lifecycle.append(hook)


def run_lifecycle(event: str, user_id: int) -> None:
    for hook in _lifecycle:
        hook(event, user_id)
