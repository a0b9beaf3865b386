"""The media node's HTTP port: HTTP-FLV and HLS for players that cannot do WebRTC.

``GET /live/<room>.flv?grant=...`` streams FLV (chunked) of the room's
publisher; ``GET /hls/<room>/index.m3u8?grant=...`` serves the playlist (the
grant is appended to every segment URI) and ``/hls/<room>/<segment>.ts``.
``authorize(room, grant)`` (hub-signed grant with ``subscribe``) returns the
viewer id (or the viewer and the grant's login session ``sid``) or raises. A
grant whose login session was revoked (``engine.revoked``) is refused with
``grant.revoked`` on every request (HLS playlists and segments included), and an
FLV reader registers itself under its sid so a revocation ends its stream. A
small HTTP/1.1 subset on asyncio: no Django here. A room closed by ``room.close``
(``engine.closed``) answers ``media.room_closed`` (409) to every request, and its FLV
readers were ended with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from .live import LiveOutputs
from .room import ROOM_CLOSED, ROOM_CLOSED_MESSAGE, MediaEngine, MediaError, Publisher, admission, issued_at

log = logging.getLogger(__name__)

Authorize = Callable[[str, str], str | tuple[str, str] | tuple[str, str, float | None]]
_FLV = re.compile(r"^/live/([\w.-]+)\.flv$")
_HLS = re.compile(r"^/hls/([\w.-]+)/(index\.m3u8|seg\d+\.ts)$")
PLAYLIST_WAIT_SECONDS = 10.0


class LiveHttpServer:
    def __init__(self, engine: MediaEngine, authorize: Authorize, outputs: LiveOutputs) -> None:
        self.engine = engine
        self.authorize = authorize
        self.outputs = outputs
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self, host: str = "127.0.0.1", port: int = 8088) -> int:
        self._server = await asyncio.start_server(self._accept, host, port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self.outputs.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._handle(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _respond(self, writer: asyncio.StreamWriter, status: str, body: bytes, ctype: str) -> None:
        head = (
            f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
            "Access-Control-Allow-Origin: *\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode() + body)
        await writer.drain()

    async def _error(self, writer: asyncio.StreamWriter, status: str, code: str, message: str) -> None:
        body = f'{{"code":"{code}","message":"{message}","detail":{{}}}}'.encode()
        await self._respond(writer, status, body, "application/json; charset=utf-8")

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        line = request.split(b"\r\n", 1)[0].decode("latin-1")
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] not in ("GET", "HEAD"):
            await self._error(writer, "405 Method Not Allowed", "method_not_allowed", "不支持的请求方法")
            return
        url = urllib.parse.urlsplit(parts[1])
        query = urllib.parse.parse_qs(url.query)
        grant = query.get("grant", [""])[0]
        only_others = query.get("other", [""])[0] == "1"
        flv = _FLV.match(url.path)
        hls = _HLS.match(url.path)
        if flv is None and hls is None:
            await self._error(writer, "404 Not Found", "not_found", "资源不存在")
            return
        room_id = (flv or hls).group(1)  # type: ignore[union-attr]
        try:
            admitted = self.authorize(room_id, grant)
            viewer, sid = admission(admitted)
        except Exception:
            await self._error(writer, "403 Forbidden", "grant.invalid", "授权凭证无效")
            return
        if self.engine.revoked.is_revoked(sid):
            await self._error(writer, "403 Forbidden", "grant.revoked", "登录已退出，授权凭证已失效")
            return
        if not self.engine.kicked.admits(room_id, viewer, issued_at(admitted)):
            await self._error(writer, "403 Forbidden", "grant.revoked", "已不在该会话中，授权凭证已失效")
            return
        if self.engine.closed.is_closed(room_id):  # ended by room.close: nothing to play any more
            await self._error(writer, "409 Conflict", ROOM_CLOSED, ROOM_CLOSED_MESSAGE)
            return
        publisher = pick_publisher(self.engine, room_id, viewer, only_others=only_others)
        if publisher is None:
            await self._error(writer, "404 Not Found", "media.no_publisher", "对方尚未开始推流")
            return
        if flv is not None:
            await self._serve_flv(writer, room_id, publisher, sid, viewer)
        else:
            assert hls is not None
            await self._serve_hls(writer, room_id, publisher, hls.group(2), grant)

    async def _serve_flv(
        self, writer: asyncio.StreamWriter, room_id: str, publisher: object, sid: str = "", viewer_id: str = ""
    ) -> None:
        stream = self.outputs.flv_stream(room_id, publisher)  # type: ignore[arg-type]
        viewer = stream.add_viewer()
        revoked: list[bool] = []

        def revoke() -> None:
            # The reader's login session ended: stop at once (nothing queued is sent).
            log.info("http-flv reader of room %s ended: its login session was revoked", room_id)
            revoked.append(True)
            viewer.put(None)

        untrack = self.engine.track_sid(sid, revoke)
        untrack_peer = self.engine.track_peer(room_id, viewer_id, revoke)  # removed from the room
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: video/x-flv\r\nTransfer-Encoding: chunked\r\n"
            b"Access-Control-Allow-Origin: *\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n"
        )
        try:
            while True:
                data = await viewer.get()
                if data is None or revoked:
                    break
                while not viewer.queue.empty():  # coalesce what is already queued
                    more = viewer.queue.get_nowait()
                    if more is None:
                        viewer.closed = True
                        break
                    viewer.pending -= len(more)
                    data += more
                if revoked:
                    break
                writer.write(b"%x\r\n%s\r\n" % (len(data), data))
                await writer.drain()
                if viewer.closed and viewer.queue.empty():
                    break
            if not revoked:
                writer.write(b"0\r\n\r\n")
                await writer.drain()
        finally:
            untrack()
            untrack_peer()
            stream.remove_viewer(viewer)
            if stream.viewer_count == 0 and self.outputs.flv.get((room_id, stream.publisher.peer_id)) is stream:
                self.outputs.release_if_idle(room_id, stream.publisher)

    async def _serve_hls(
        self, writer: asyncio.StreamWriter, room_id: str, publisher: object, name: str, grant: str
    ) -> None:
        hls = self.outputs.hls_writer(room_id, publisher)  # type: ignore[arg-type]
        path: Path = hls.directory / name
        if name == "index.m3u8":
            loop = asyncio.get_running_loop()
            deadline = loop.time() + PLAYLIST_WAIT_SECONDS
            while not _has_segment(path) and loop.time() < deadline:
                await asyncio.sleep(0.1)
            if not path.exists():
                await self._error(writer, "404 Not Found", "media.hls_not_ready", "直播切片尚未生成")
                return
            query = urllib.parse.urlencode({"grant": grant})
            lines = [f"{ln}?{query}" if ln and not ln.startswith("#") else ln for ln in path.read_text().splitlines()]
            await self._respond(writer, "200 OK", ("\n".join(lines) + "\n").encode(), "application/vnd.apple.mpegurl")
            return
        if not path.exists():
            await self._error(writer, "404 Not Found", "not_found", "资源不存在")
            return
        await self._respond(writer, "200 OK", path.read_bytes(), "video/mp2t")


def pick_publisher(engine: MediaEngine, room_id: str, viewer: str, *, only_others: bool = False) -> Publisher | None:
    """The publisher a viewer of ``room_id`` plays: the first one other than the viewer
    itself (a live-player shows the other side of the visit); with ``only_others`` nothing
    else (``?other=1``: the mini-program waits for the other side rather than seeing
    itself), otherwise the viewer's own publication when it is the only one."""
    room = engine.rooms.get(room_id)
    if room is None:
        return None
    other = next((p for p in room.publishers.values() if p.peer_id != viewer), None)
    if other is not None or only_others:
        return other
    return room.publishers.get(viewer)


def _has_segment(path: Path) -> bool:
    try:
        return ".ts" in path.read_text()
    except OSError:
        return False


__all__ = ["LiveHttpServer", "MediaError"]
