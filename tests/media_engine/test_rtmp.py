"""ffmpeg pushes RTMP (H.264 + AAC) into a room; a WebRTC subscriber decodes both tracks."""

from __future__ import annotations

import array
import asyncio
import shutil

import av
import pytest

from media_engine import MediaEngine, MediaError
from media_engine.audio import AudioTranscoder
from media_engine.client import subscribe
from media_engine.grants import sign_grant, verify_grant
from media_engine.rtmp import RtmpServer

pytestmark = pytest.mark.asyncio

KEY = b"k" * 32


def authorize(room_id: str, token: str) -> str:
    grant = verify_grant(token, key=KEY, purpose="room")
    if grant.get("room") != room_id or not grant.get("publish"):
        raise MediaError("grant.invalid", "授权凭证与房间或操作不符")
    return str(grant["peer"])


def grant(room_id: str, peer: str, *, publish: bool = True) -> str:
    payload = {"purpose": "room", "room": room_id, "peer": peer, "publish": publish, "subscribe": False}
    return sign_grant(payload, key=KEY, ttl_seconds=60)


async def ffmpeg_push(url: str, seconds: float, *, video: bool = True) -> asyncio.subprocess.Process:
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg, "ffmpeg CLI missing"
    video_args = [
        "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30",
    ] if video else []  # fmt: skip
    video_codec = [
        "-c:v", "libx264", "-profile:v", "baseline", "-preset", "veryfast", "-tune", "zerolatency", "-g", "30",
    ] if video else []  # fmt: skip
    return await asyncio.create_subprocess_exec(
        ffmpeg, "-hide_banner", "-loglevel", "error", "-re",
        *video_args,
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
        "-t", str(seconds),
        *video_codec,
        "-c:a", "aac", "-b:a", "64k",
        "-f", "flv", url,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def stop(proc: asyncio.subprocess.Process) -> bytes:
    if proc.returncode is None:
        proc.kill()
    _, err = await asyncio.wait_for(proc.communicate(), 10)
    return err


async def test_ffmpeg_rtmp_push_is_received_by_webrtc_subscriber(engine: MediaEngine) -> None:
    server = RtmpServer(engine, authorize)
    port = await server.start("127.0.0.1", 0)
    # Two pushers on the same port, into two rooms.
    pushes = [
        await ffmpeg_push(f"rtmp://127.0.0.1:{port}/live/{room}?grant={grant(room, 'pusher-' + room)}", 8)
        for room in ("rtmp-a", "rtmp-b")
    ]
    subs = []
    try:
        for room_id in ("rtmp-a", "rtmp-b"):
            room = engine.room(room_id)
            publisher = await room.wait_publisher(timeout=10)
            assert publisher.peer_id == f"pusher-{room_id}"
            assert sorted(publisher.sources) == ["audio", "video"]
            sub = await subscribe(
                lambda sdp, room=room, pid=publisher.peer_id: room.subscribe("viewer", sdp, publisher_id=pid),
                encoded=False,
                keep=3,
            )
            subs.append(sub)
        for sub in subs:
            await sub.wait_count("video", 15, timeout=10)
            await sub.wait_count("audio", 25, timeout=10)
            frame = sub.received["video"].items[0]
            assert isinstance(frame, av.VideoFrame)
            assert (frame.width, frame.height) == (320, 240)
            audio = sub.received["audio"].items[0]
            assert isinstance(audio, av.AudioFrame) and audio.sample_rate == 48000
            # A real tone, not silence: AAC was transcoded to Opus, not replaced.
            assert audio.format.name == "s16"
            peak = max(abs(x) for item in sub.received["audio"].items for x in array.array("h", bytes(item.planes[0])))
            assert peak > 1000
        assert engine.room("rtmp-a").publishers["pusher-rtmp-a"].sources["video"].codec_name == "H264"
    finally:
        for sub in subs:
            await sub.close()
        for proc in pushes:
            await stop(proc)
        await server.close()
    assert not engine.room("rtmp-a").publishers, "publisher left when the push ended"


async def test_rtmp_push_without_valid_grant_is_refused(engine: MediaEngine) -> None:
    server = RtmpServer(engine, authorize)
    port = await server.start("127.0.0.1", 0)
    try:
        wrong_room = grant("other", "pusher")
        proc = await ffmpeg_push(f"rtmp://127.0.0.1:{port}/live/rtmp-c?grant={wrong_room}", 3)
        code = await asyncio.wait_for(proc.wait(), 10)
        await stop(proc)
        assert code != 0
        assert not engine.room("rtmp-c").publishers
    finally:
        await server.close()


async def test_aac_to_opus_runs_only_while_a_webrtc_subscriber_listens(engine: MediaEngine) -> None:
    server = RtmpServer(engine, authorize)
    port = await server.start("127.0.0.1", 0)
    started = AudioTranscoder.started.get("aac->opus", 0)
    push = await ffmpeg_push(f"rtmp://127.0.0.1:{port}/live/rtmp-d?grant={grant('rtmp-d', 'pusher')}", 8)
    try:
        room = engine.room("rtmp-d")
        publisher = await room.wait_publisher("pusher", timeout=10)
        assert publisher.aac_audio is not None and publisher.aac_audio.codec_name == "aac"
        await asyncio.sleep(1.0)
        # AAC is flowing, but no Opus consumer: nothing is transcoded.
        assert publisher.aac_audio.packets_in > 10
        assert AudioTranscoder.started.get("aac->opus", 0) == started
        sub = await subscribe(lambda sdp: room.subscribe("viewer", sdp, publisher_id="pusher"), encoded=False, keep=3)
        try:
            await sub.wait_count("audio", 25, timeout=10)
            assert AudioTranscoder.started.get("aac->opus", 0) == started + 1
        finally:
            await sub.close()
        # The subscriber left: the transcoder stops (the source has no Opus sink any more).
        for _ in range(100):
            if publisher.sources["audio"].sink_count == 0:
                break
            await asyncio.sleep(0.05)
        assert publisher.sources["audio"].sink_count == 0
        session = next(iter(server.sessions))
        assert session.aac is None
        # The room ends the Opus source (the publication): the AAC source ends with it.
        await publisher.sources["audio"].stop()
        await asyncio.wait_for(publisher.aac_audio.ended.wait(), 5)
    finally:
        await stop(push)
        await server.close()


async def test_audio_only_push_without_opus_consumers_is_not_taken_for_silent(
    engine: MediaEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    import media_engine.room

    monkeypatch.setattr(media_engine.room, "PUBLISHER_FIRST_PACKET_SECONDS", 1.0)
    monkeypatch.setattr(media_engine.room, "PUBLISHER_SILENCE_SECONDS", 1.0)
    server = RtmpServer(engine, authorize)
    port = await server.start("127.0.0.1", 0)
    push = await ffmpeg_push(f"rtmp://127.0.0.1:{port}/live/rtmp-e?grant={grant('rtmp-e', 'radio')}", 8, video=False)
    try:
        room = engine.room("rtmp-e")
        publisher = await room.wait_publisher("radio", timeout=10)
        assert sorted(publisher.sources) == ["audio"]
        await asyncio.sleep(2.5)
        # Nothing transcoded (no Opus consumer), yet the push is alive: the watchdog keeps it.
        assert next(iter(server.sessions)).aac is None
        assert room.publishers.get("radio") is publisher
    finally:
        await stop(push)
        await server.close()
