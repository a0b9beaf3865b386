"""The embedded media node: one engine and one node inside the web process.

In the embedded default (``MEDIA_EMBEDDED``, on when there is no
``REDIS_URL``) the WHIP/WHEP endpoints and the node's commands act on the
same :class:`MediaEngine`, so a room a browser publishes into over WHIP is the
room the hub records. Commands still go through :meth:`MediaNode.handle` with
a hub-signed ``node`` grant; the node's events are applied to
``recordings.Recording`` rows in this process instead of crossing the channel
layer.

The embedded node also runs the node's RTMP ingest and HTTP-FLV/HLS ports
(``MEDIA_RTMP_PORT``, ``MEDIA_HTTP_PORT``) in this process, started with the
server (:func:`start_servers`), so a mini-program can push and play a demo
visit like any other client.

Everything here belongs to the running event loop (daphne has one). A new
loop (a test's) gets a fresh engine: aiortc objects cannot move between loops.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from pathlib import Path
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from hub.crypto import grant_key
from media_engine import MediaEngine
from media_engine.httpout import LiveHttpServer
from media_engine.live import LiveOutputs
from media_engine.node import MediaNode
from media_engine.rtmp import RtmpServer
from recordings.services import handle_event
from recordings.storage import manifest_key, recordings_root

from .grants import room_authorizer

log = logging.getLogger(__name__)

_state: dict[str, Any] = {"loop": None, "engine": None, "node": None, "pending": set(), "servers": None}


def is_embedded(node: str) -> bool:
    return bool(settings.MEDIA_EMBEDDED) and node == settings.MEDIA_NODE


def _apply_event(event: dict[str, Any]) -> None:
    async def apply() -> None:
        try:
            await sync_to_async(handle_event)(event)
        except Exception:
            log.exception("embedded media event %s not applied", event.get("type"))

    # A clean context: the emitter may run inside asgiref's async_to_sync (a sync view
    # or middleware), whose thread executor is gone by the time this task runs.
    task = asyncio.get_running_loop().create_task(apply(), context=contextvars.Context())
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
            recordings_root=recordings_root(),
            emit=_apply_event,
        ),
        pending=set(),
        servers=None,
    )
    log.info("embedded media node %s started", name)


def node_loop() -> asyncio.AbstractEventLoop | None:
    """The loop the embedded node of this process runs on (None before its first use)."""
    loop: asyncio.AbstractEventLoop | None = _state["loop"]
    return loop


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


async def start_servers() -> tuple[int, int]:
    """Open the embedded node's RTMP and HTTP-FLV/HLS ports (once per loop); returns them."""
    _ensure()
    if _state["servers"] is None:
        engine_ = _state["engine"]
        rtmp = RtmpServer(engine_, room_authorizer("publish"))
        http = LiveHttpServer(engine_, room_authorizer("subscribe"), LiveOutputs(Path(settings.VAR_DIR) / "hls"))
        _state["servers"] = (rtmp, http)
        host = settings.MEDIA_BIND_HOST
        await rtmp.start(host, settings.MEDIA_RTMP_PORT)
        await http.start(host, settings.MEDIA_HTTP_PORT)
        log.info("embedded media node: rtmp %s:%d, http %s:%d", host, rtmp.port, host, http.port)
    rtmp, http = _state["servers"]
    return rtmp.port, http.port


def ports() -> tuple[int, int]:
    """The embedded RTMP and HTTP ports (0 before :func:`start_servers`)."""
    servers = _state["servers"] if _state["loop"] is not None else None
    if servers is None:
        return 0, 0
    return servers[0].port, servers[1].port


def start_with_server(loop: asyncio.AbstractEventLoop) -> None:
    """Schedule :func:`start_servers` on the server's loop (daphne's), logging a busy port."""

    async def start() -> None:
        try:
            await start_servers()
        except OSError as exc:
            log.error("embedded media ports not opened (%s): RTMP and HTTP-FLV are off", exc)

    loop.call_soon(lambda: loop.create_task(start(), context=contextvars.Context()))


async def drain_events() -> None:
    """Wait until the events emitted so far are applied to the database."""
    pending: set[asyncio.Task[None]] = _state["pending"]
    while pending:
        await asyncio.gather(*list(pending), return_exceptions=True)


async def shutdown() -> None:
    """Stop recorders (sealing their files) and close every room of this process."""
    if _state["loop"] is asyncio.get_running_loop() and _state["node"] is not None:
        if _state["servers"] is not None:
            for server in _state["servers"]:
                await server.close()
        await _state["node"].close()
        await drain_events()
    _state.update(loop=None, engine=None, node=None, pending=set(), servers=None)
