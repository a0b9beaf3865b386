"""The embedded media node: one engine and one node inside the web process.

In the embedded default (``MEDIA_EMBEDDED``, on when there is no
``REDIS_URL``) the WHIP/WHEP endpoints and the node's commands act on the
same :class:`MediaEngine`, so a room a browser publishes into over WHIP is the
room the hub records. Commands still go through :meth:`MediaNode.handle` with
a hub-signed ``node`` grant; the node's events are applied to
``recordings.Recording`` rows in this process instead of crossing the channel
layer.

Everything here belongs to the running event loop (daphne has one). A new
loop (a test's) gets a fresh engine: aiortc objects cannot move between loops.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from media_engine import MediaEngine
from media_engine.node import MediaNode

from .grants import grant_key, manifest_key

log = logging.getLogger(__name__)

_state: dict[str, Any] = {"loop": None, "engine": None, "node": None, "pending": set()}


def is_embedded(node: str) -> bool:
    return bool(settings.MEDIA_EMBEDDED) and node == settings.MEDIA_NODE


def _apply_event(event: dict[str, Any]) -> None:
    from .control import handle_event

    async def apply() -> None:
        try:
            await sync_to_async(handle_event)(event)
        except Exception:
            log.exception("embedded media event %s not applied", event.get("type"))

    task = asyncio.ensure_future(apply())
    pending: set[asyncio.Task[None]] = _state["pending"]
    pending.add(task)
    task.add_done_callback(pending.discard)


def _ensure() -> None:
    loop = asyncio.get_running_loop()
    if _state["loop"] is loop:
        return
    name = settings.MEDIA_NODE

    def on_room_event(kind: str, data: dict[str, Any]) -> None:
        if _state["node"] is not None:
            _state["node"].emit(kind, **data)

    engine = MediaEngine(on_event=on_room_event)
    _state.update(
        loop=loop,
        engine=engine,
        node=MediaNode(
            engine,
            name=name,
            grant_key=grant_key(),
            manifest_key=manifest_key(),
            recordings_root=Path(settings.RECORDINGS_ROOT),
            emit=_apply_event,
        ),
        pending=set(),
    )
    log.info("embedded media node %s started", name)


def engine() -> MediaEngine:
    """The engine of this process: WHIP/WHEP rooms and the embedded node's rooms."""
    _ensure()
    result: MediaEngine = _state["engine"]
    return result


def node() -> MediaNode:
    """The embedded media node (recorders) over :func:`engine`."""
    _ensure()
    result: MediaNode = _state["node"]
    return result


async def drain_events() -> None:
    """Wait until the events emitted so far are applied to the database."""
    pending: set[asyncio.Task[None]] = _state["pending"]
    while pending:
        await asyncio.gather(*list(pending), return_exceptions=True)


async def shutdown() -> None:
    """Stop recorders (sealing their files) and close every room of this process."""
    if _state["loop"] is asyncio.get_running_loop() and _state["node"] is not None:
        await _state["node"].close()
        await drain_events()
    _state.update(loop=None, engine=None, node=None, pending=set())
