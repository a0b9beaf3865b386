"""RTMP sessions: a reconnecting live-pusher replaces its old session cleanly, and the
URL it was given keeps working for reconnects after the joining grant expired."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from media_engine import MediaEngine, rtmp
from media_engine.client import subscribe
from media_engine.grants import sign_grant
from media_engine.rtmp import RtmpServer
from tests.media_engine.test_rtmp import KEY, authorize, ffmpeg_push, stop

pytestmark = pytest.mark.asyncio


def short_grant(room_id: str, peer: str, ttl: int) -> str:
    payload = {"purpose": "room", "room": room_id, "peer": peer, "publish": True, "subscribe": False}
    return sign_grant(payload, key=KEY, ttl_seconds=ttl)


async def wait_for(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.05)
    return False


async def test_second_push_of_the_same_peer_replaces_the_first(
    engine: MediaEngine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    server = RtmpServer(engine, authorize)
    port = await server.start("127.0.0.1", 0)
    url = f"rtmp://127.0.0.1:{port}/live/swap?grant={short_grant('swap', 'pusher', 60)}"
    room = engine.room("swap")
    first = await ffmpeg_push(url, 30)
    player = None
    second = None
    try:
        publisher1 = await room.wait_publisher("pusher", timeout=10)
        player = await subscribe(lambda sdp: room.subscribe("viewer", sdp, publisher_id="pusher"))
        await player.wait_count("video", 30, timeout=10)
        second = await ffmpeg_push(url, 30)  # live-pusher reconnecting while the old TCP is still up
        assert await wait_for(lambda: room.publishers.get("pusher") not in (None, publisher1), 10)
        # The old session is dropped by the server: its ffmpeg sees the connection go.
        await asyncio.wait_for(first.wait(), 10)
        assert len(server.sessions) == 1
        before = player.received["video"].count
        await player.wait_count("video", before + 30, timeout=10)
        await player.wait_count("audio", 20, timeout=10)
        assert room.publishers["pusher"] is not publisher1
        assert room.subscribers["viewer"].tracks["video"].source is room.publishers["pusher"].sources["video"]
        assert second.returncode is None, "the new push must keep going"
    finally:
        if player is not None:
            await player.close()
        for proc in (first, second):
            if proc is not None:
                await stop(proc)
        await server.close()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not errors, [r.getMessage() for r in errors]


async def test_pusher_reconnects_after_its_grant_expired(engine: MediaEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rtmp, "RECONNECT_SECONDS", 3.0)
    server = RtmpServer(engine, authorize)
    port = await server.start("127.0.0.1", 0)
    token = short_grant("re", "pusher", ttl=2)
    url = f"rtmp://127.0.0.1:{port}/live/re?grant={token}"
    room = engine.room("re")
    push = await ffmpeg_push(url, 4.0)
    try:
        await room.wait_publisher("pusher", timeout=10)
        await asyncio.wait_for(push.wait(), 20)  # pushed past the grant's expiry, then the link dropped
        assert await wait_for(lambda: "pusher" not in room.publishers, 5)
        # The same URL reconnects: the grant only admits joining, the session it created lives on.
        push = await ffmpeg_push(url, 2.0)
        await room.wait_publisher("pusher", timeout=10)
        await asyncio.wait_for(push.wait(), 20)
        assert await wait_for(lambda: "pusher" not in room.publishers, 5)
        # An expired grant that never admitted a push is refused ...
        unused = await ffmpeg_push(f"rtmp://127.0.0.1:{port}/live/re?grant={short_grant('re', 'other', ttl=-1)}", 2)
        err = await asyncio.wait_for(unused.communicate(), 20)
        assert "other" not in room.publishers and unused.returncode != 0, err
        # ... and so is the old URL once its session ended longer ago than the reconnect window.
        await asyncio.sleep(3.5)
        late = await ffmpeg_push(url, 2)
        await asyncio.wait_for(late.communicate(), 20)
        assert late.returncode != 0 and "pusher" not in room.publishers
    finally:
        await stop(push)
        await server.close()
