"""Real aiortc peers through a room: encoded forwarding, GOP cache, PLI, slow subscribers."""

from __future__ import annotations

import asyncio
import time

import av
import pytest

from media_engine import ForwardedTrack, MediaEngine, TrackSource
from media_engine.client import publish_clips, subscribe
from media_engine.forwarding import PLI_INTERVAL_SECONDS
from media_engine.synthetic import Clip, ClipTrack

from .conftest import nal_units

pytestmark = pytest.mark.asyncio


async def test_publisher_and_subscribers_exchange_video_and_audio(
    engine: MediaEngine, video_clip: Clip, audio_clip: Clip
) -> None:
    room = engine.room("r-exchange")
    pub = await publish_clips(lambda sdp: room.publish("doctor", sdp), video_clip, audio_clip)
    decoded = await subscribe(lambda sdp: room.subscribe("patient", sdp, publisher_id="doctor"), encoded=False, keep=3)
    encoded = await subscribe(lambda sdp: room.subscribe("nurse", sdp, publisher_id="doctor"), keep=30)
    try:
        await decoded.wait_count("video", 10)
        await decoded.wait_count("audio", 10)
        await encoded.wait_count("video", 30)
        await encoded.wait_count("audio", 10)
        frame = decoded.received["video"].items[0]
        assert isinstance(frame, av.VideoFrame)
        assert (frame.width, frame.height) == (320, 240)
        assert isinstance(decoded.received["audio"].items[0], av.AudioFrame)
        assert decoded.received["audio"].items[0].sample_rate == 48000
        # The negotiated codec is H.264, and what the subscriber gets is the
        # publisher's bitstream byte for byte: forwarded, not re-encoded.
        assert room.publishers["doctor"].sources["video"].codec_name == "H264"
        originals = {nal_units(s.data) for s in video_clip.samples}
        got = encoded.received["video"].items
        assert got[0].is_keyframe
        assert len(got) == 30
        assert all(nal_units(bytes(p)) in originals for p in got), "a forwarded frame differs from the published one"
        stats = room.stats()
        assert stats["subscribers"]["nurse"]["video"]["dropped"] == 0
    finally:
        await asyncio.gather(pub.close(), decoded.close(), encoded.close())


async def test_late_joiner_first_frame_comes_from_gop_cache(
    engine: MediaEngine, video_clip: Clip, audio_clip: Clip
) -> None:
    room = engine.room("r-late")
    pub = await publish_clips(lambda sdp: room.publish("doctor", sdp), video_clip, audio_clip)
    early = await subscribe(lambda sdp: room.subscribe("early", sdp, publisher_id="doctor"))
    try:
        await early.wait_count("video", 45)  # 1.5 s: mid-way through the second GOP
        source = room.publishers["doctor"].sources["video"]
        assert source.has_keyframe
        requests_before = pub.tracks["video"].keyframe_requests
        late = await subscribe(lambda sdp: room.subscribe("late", sdp, publisher_id="doctor"), keep=5)
        try:
            got = await late.wait_first("video", timeout=5)
            assert late.connected_at is not None
            first_frame_ms = (got.first_at - late.connected_at) * 1000
            assert got.first_is_keyframe
            assert first_frame_ms < 300, f"first frame {first_frame_ms:.0f} ms after connect"
            # It came from the cache: the publisher was not asked for a keyframe,
            # and the frames right after it are the cached deltas, not a new GOP.
            await late.wait_count("video", 5)
            assert pub.tracks["video"].keyframe_requests == requests_before
            assert [p.is_keyframe for p in late.received["video"].items[1:5]] == [False] * 4
        finally:
            await late.close()
    finally:
        await asyncio.gather(pub.close(), early.close())


async def test_pli_from_subscriber_reaches_publisher_media_ssrc_throttled(
    engine: MediaEngine, video_clip: Clip
) -> None:
    room = engine.room("r-pli")
    pub = await publish_clips(lambda sdp: room.publish("doctor", sdp), video_clip)
    sub = await subscribe(lambda sdp: room.subscribe("patient", sdp, publisher_id="doctor"), kinds=("video",))
    try:
        await sub.wait_count("video", 5)
        track = pub.tracks["video"]
        before = track.keyframe_requests
        receiver = sub.pc.getTransceivers()[0].receiver
        ssrc = receiver.getSynchronizationSources()[0].source
        started = time.monotonic()
        for _ in range(10):  # a burst of PLIs from the subscriber
            await receiver._send_rtcp_pli(ssrc)
        deadline = time.monotonic() + 2
        while track.keyframe_requests == before and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert track.keyframe_requests == before + 1, "PLI did not reach the publisher's media SSRC"
        # At once, or when the throttle window of an earlier PLI (the join) ends.
        assert time.monotonic() - started < PLI_INTERVAL_SECONDS + 0.3
        await asyncio.sleep(0.3)
        assert track.keyframe_requests == before + 1, "burst not throttled"
    finally:
        await asyncio.gather(pub.close(), sub.close())


async def test_slow_subscriber_drops_and_resyncs_without_stalling_others(video_clip: Clip) -> None:
    clip_track = ClipTrack(video_clip)
    source = TrackSource(
        kind="video",
        codec_name="H264",
        track=clip_track,
        request_keyframe=lambda: clip_track.request_keyframe() or True,
    )
    fast = ForwardedTrack(source)
    slow = ForwardedTrack(source, max_queue=10)
    source.start()
    try:
        received: list[av.Packet] = []
        deadline = time.monotonic() + 5
        while len(received) < 30 and time.monotonic() < deadline:
            received.append(await asyncio.wait_for(fast.recv(), 2))
        assert len(received) == 30
        assert fast.dropped == 0 and received[0].is_keyframe
        assert slow.resyncs >= 1 and slow.dropped >= 10
        assert clip_track.keyframe_requests >= 1  # the resync asked upstream for a keyframe
        # Once it reads again, the slow subscriber starts on a keyframe.
        first = await asyncio.wait_for(slow.recv(), 2)
        assert first.is_keyframe
    finally:
        fast.stop()
        slow.stop()
        await source.stop()
        clip_track.stop()
