"""Exact recordings: a recording window gives a file of that length, A/V aligned at 0.

Issue 8, items 10 and 11. The recording is started mid-GOP (after a keyframe,
before the next one), where the GOP cache used to add the pre-roll to the file
(video from before the start, audio from the start), and, for a VP8 publisher,
where the transcoder's burst through the cached GOP stretched the H.264 track
past the audio. Each publisher is a real peer: aiortc (H.264, VP8) or the
ffmpeg CLI over RTMP. The same transcode feeds FLV (its video and audio must
end together) and keeps its input's pts and arrival (checked packet by packet).
"""

from __future__ import annotations

import asyncio
import fractions
import shutil
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import pytest

from media_engine import MediaEngine, MediaError
from media_engine.client import publish_clips
from media_engine.forwarding import TrackSource
from media_engine.grants import sign_grant, verify_grant
from media_engine.live import LiveOutputs
from media_engine.node import MediaNode
from media_engine.recording import Recorder, verify_manifest
from media_engine.rtmp import QueueTrack, RtmpServer
from media_engine.synthetic import Clip, encode_h264, encode_opus, encode_vp8
from media_engine.video import VideoTranscoder

pytestmark = pytest.mark.asyncio

NODE_KEY, MANIFEST_KEY, ROOM_KEY = b"n" * 32, b"m" * 32, b"k" * 32
WINDOW = 10.0
# WebRTC clips: a 2 s GOP (browsers use long ones), the recording starts 1.5 s into it.
WEBRTC_GOP_FRAMES, WEBRTC_MID_GOP = 60, 1.5
# RTMP: ffmpeg at 25 fps with -g 10 (0.4 s GOP), the recording starts 0.2 s into it.
RTMP_GOP_FRAMES, RTMP_FPS, RTMP_MID_GOP = 10, 25, 0.2


@dataclass
class Timeline:
    first_pts: float  # the first packet's pts as PyAV reads it
    start: float  # where the first packet's own media begins (see read_tracks)
    end: float  # the last packet's pts + duration

    @property
    def duration(self) -> float:
        return self.end - self.start


def read_tracks(path: Path) -> dict[str, Timeline]:
    """Each track's timeline in seconds, as PyAV demuxes the MP4.

    The fragmented-MP4 muxer starts every track at 0: a track whose first
    packet comes later gets that packet stretched back to 0 (an Opus frame of
    1.5 s instead of 20 ms), so its first pts always reads 0. Where the
    track's media really begins is the first packet's end minus a regular
    packet's duration (the track's median).
    """
    packets: dict[str, list[tuple[float, float]]] = {}
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.pts is None or packet.time_base is None:
                continue
            start = float(packet.pts * packet.time_base)
            packets.setdefault(packet.stream.type, []).append((start, float((packet.duration or 0) * packet.time_base)))
    tracks = {}
    for kind, items in packets.items():
        items.sort()
        regular = statistics.median(duration for _, duration in items)
        first_pts, first_duration = items[0]
        start = first_pts + max(first_duration - regular, 0.0)
        tracks[kind] = Timeline(first_pts, start, max(pts + duration for pts, duration in items))
    return tracks


def first_video_is_keyframe(path: Path) -> bool:
    with av.open(str(path)) as container:
        return bool(next(container.demux(video=0)).is_keyframe)


def node_command(cmd: str, room_id: str, **data: object) -> dict[str, object]:
    token = sign_grant({"purpose": "node", "cmd": cmd, "room": room_id}, key=NODE_KEY, ttl_seconds=60)
    return {"cmd": cmd, "room": room_id, "grant": token, **data}


def rtmp_authorize(room_id: str, token: str) -> str:
    grant = verify_grant(token, key=ROOM_KEY, purpose="room")
    if grant.get("room") != room_id or not grant.get("publish"):
        raise MediaError("grant.invalid", "授权凭证与房间或操作不符")
    return str(grant["peer"])


async def ffmpeg_rtmp_push(url: str, seconds: float) -> asyncio.subprocess.Process:
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg, "ffmpeg CLI missing"
    return await asyncio.create_subprocess_exec(
        ffmpeg, "-hide_banner", "-loglevel", "error", "-re",
        "-f", "lavfi", "-i", f"testsrc2=size=320x240:rate={RTMP_FPS}",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
        "-t", str(seconds),
        "-c:v", "libx264", "-profile:v", "baseline", "-preset", "veryfast", "-tune", "zerolatency",
        "-g", str(RTMP_GOP_FRAMES), "-keyint_min", str(RTMP_GOP_FRAMES), "-sc_threshold", "0",
        "-c:a", "aac", "-b:a", "64k",
        "-f", "flv", url,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


@pytest.fixture(scope="module")
def long_gop_clips() -> dict[str, Clip]:
    return {
        "h264": encode_h264(width=320, height=240, fps=30, seconds=4.0, gop_frames=WEBRTC_GOP_FRAMES),
        "vp8": encode_vp8(width=320, height=240, fps=30, seconds=4.0, gop_frames=WEBRTC_GOP_FRAMES),
        "opus": encode_opus(seconds=4.0),
    }


@pytest.fixture
async def node(engine: MediaEngine, tmp_path: Path) -> AsyncIterator[MediaNode]:
    media_node = MediaNode(
        engine,
        name="t",
        grant_key=NODE_KEY,
        manifest_key=MANIFEST_KEY,
        recordings_root=tmp_path,
        emit=lambda event: None,
    )
    try:
        yield media_node
    finally:
        await media_node.close()


async def wait_keyframe(engine: MediaEngine, room_id: str, timeout: float = 15.0) -> None:
    """Wait for the publisher's next video keyframe to reach the room."""
    publisher = await engine.room(room_id).wait_publisher(timeout=timeout)
    source = publisher.sources["video"]
    deadline = time.monotonic() + timeout
    seen = source.keyframes_in
    while source.keyframes_in == seen:
        assert time.monotonic() < deadline, "no keyframe from the publisher"
        await asyncio.sleep(0.005)


@pytest.mark.parametrize("publisher", ["aiortc-h264", "aiortc-vp8", "aiortc-vp8-flv", "ffmpeg-rtmp"])
async def test_recording_window_is_exact_and_aligned(
    publisher: str, engine: MediaEngine, node: MediaNode, long_gop_clips: dict[str, Clip], tmp_path: Path
) -> None:
    """A 10 s window gives a 10 s file, A/V aligned at 0, for each kind of publisher.

    ``aiortc-vp8-flv``: an FLV viewer already runs the track's transcoder when
    the recording starts, so the recording shares it mid-GOP of the H.264
    side (the recorder's keyframe request forces an IDR there).
    """
    room_id = f"exact-{publisher}"
    room = engine.room(room_id)
    closers: list[Callable[[], Awaitable[Any]]] = []
    try:
        if publisher == "ffmpeg-rtmp":
            server = RtmpServer(engine, rtmp_authorize)
            closers.append(server.close)
            port = await server.start("127.0.0.1", 0)
            payload = {"purpose": "room", "room": room_id, "peer": "pusher", "publish": True, "subscribe": False}
            token = sign_grant(payload, key=ROOM_KEY, ttl_seconds=60)
            proc = await ffmpeg_rtmp_push(f"rtmp://127.0.0.1:{port}/live/{room_id}?grant={token}", WINDOW + 15)

            async def stop_ffmpeg() -> None:
                if proc.returncode is None:
                    proc.kill()
                await asyncio.wait_for(proc.wait(), 10)

            closers.append(stop_ffmpeg)
            mid_gop = RTMP_MID_GOP
        else:
            clip = long_gop_clips["h264" if publisher == "aiortc-h264" else "vp8"]
            pub = await publish_clips(lambda sdp: room.publish("doctor", sdp), clip, long_gop_clips["opus"])
            closers.append(pub.close)
            mid_gop = WEBRTC_MID_GOP
        await wait_keyframe(engine, room_id)
        await wait_keyframe(engine, room_id)  # publishing steadily: the GOP cache holds a full GOP
        if publisher == "aiortc-vp8-flv":
            outputs = LiveOutputs(tmp_path / "hls")

            async def close_outputs() -> None:
                outputs.close()

            closers.append(close_outputs)
            viewer = outputs.flv_stream(room_id, room.publishers["doctor"]).add_viewer()
        await asyncio.sleep(mid_gop)  # start in the middle of a GOP

        started = await node.handle(node_command("record.start", room_id, recording="r1"))
        assert started["ok"], started
        await asyncio.sleep(WINDOW)  # the recording window, not a wait for something
        stopped = await node.handle(node_command("record.stop", room_id))
        assert stopped["ok"], stopped
    finally:
        for close in reversed(closers):
            await close()

    path = tmp_path / room_id / "r1.mp4"
    tracks = read_tracks(path)
    assert sorted(tracks) == ["audio", "video"], tracks
    video, audio = tracks["video"], tracks["audio"]
    duration = max(video.end, audio.end) - min(video.start, audio.start)
    measured = {
        "file": round(duration, 3),
        "video": round(video.duration, 3),
        "audio": round(audio.duration, 3),
        "video_start": round(video.start, 3),
        "audio_start": round(audio.start, 3),
        "offset": round(audio.start - video.start, 3),
        "first_pts": (round(video.first_pts, 3), round(audio.first_pts, 3)),
    }
    print(publisher, measured)
    assert first_video_is_keyframe(path)
    # The file is the window: no pre-roll from the GOP cache before the start.
    assert abs(duration - WINDOW) <= 0.5, measured
    # Both tracks start at 0 on the file's timeline, together.
    assert abs(audio.first_pts - video.first_pts) < 0.1, measured
    assert abs(audio.start - video.start) < 0.1, measured
    assert video.start < 0.1, measured
    # And they run equally long (a transcoded track keeps its source's clock).
    assert abs(video.duration - audio.duration) <= 0.3, measured

    if publisher == "aiortc-vp8-flv":
        assert viewer.pending > 0, "the FLV viewer shared the transcode during the recording"

    manifest = stopped["manifest"]
    assert isinstance(manifest, dict)
    assert verify_manifest(manifest, MANIFEST_KEY, path)
    # When the first frame (the file's 0) arrived, relative to the start request.
    delay = manifest["first_frame_after_start_seconds"]
    print(publisher, "first frame after start", delay)
    assert isinstance(delay, float) and 0.0 <= delay < WINDOW, manifest
    with av.open(str(path)) as container:
        assert container.duration is not None
        assert abs(container.duration / av.time_base - WINDOW) <= 0.5, container.duration


def read_flv_ends(path: Path) -> dict[str, float]:
    """The last timestamp of each track of an FLV file, in seconds."""
    ends: dict[str, float] = {}
    with av.open(str(path), format="flv") as container:
        for packet in container.demux():
            if packet.pts is not None and packet.time_base is not None:
                kind = packet.stream.type
                ends[kind] = max(ends.get(kind, 0.0), float(packet.pts * packet.time_base))
    return ends


async def test_vp8_publisher_as_flv_keeps_video_on_the_audio_timeline(
    engine: MediaEngine, long_gop_clips: dict[str, Clip], tmp_path: Path
) -> None:
    """The VP8 -> H.264 transcode started mid-GOP (FLV viewer) keeps the source's clock.

    The viewer gets the cached GOP first, so video starts before the audio; but
    both tracks end when the stream is closed: their last timestamps agree.
    """
    room_id = "exact-flv-vp8"
    room = engine.room(room_id)
    pub = await publish_clips(lambda sdp: room.publish("browser", sdp), long_gop_clips["vp8"], long_gop_clips["opus"])
    outputs = LiveOutputs(tmp_path / "hls")
    received = bytearray()
    try:
        publisher = await room.wait_publisher("browser")
        await wait_keyframe(engine, room_id)
        await wait_keyframe(engine, room_id)
        await asyncio.sleep(WEBRTC_MID_GOP)
        stream = outputs.flv_stream(room_id, publisher)
        viewer = stream.add_viewer()

        async def read() -> None:
            while (data := await viewer.get()) is not None:
                received.extend(data)

        reader = asyncio.ensure_future(read())
        await asyncio.sleep(4.0)  # the stream's length, not a wait for something
        outputs.close()
        await asyncio.wait_for(reader, 10)
    finally:
        outputs.close()
        await pub.close()
    path = tmp_path / "viewer.flv"
    path.write_bytes(bytes(received))
    ends = read_flv_ends(path)
    print("flv ends", ends)
    assert sorted(ends) == ["audio", "video"], ends
    assert abs(ends["video"] - ends["audio"]) <= 0.3, ends


class _Collect:
    def __init__(self) -> None:
        self.items: list[tuple[int, float, bool]] = []

    def offer(self, packet: Any, arrival: float) -> None:
        self.items.append((int(packet.pts), arrival, bool(packet.is_keyframe)))

    def source_ended(self) -> None:
        pass


@pytest.mark.parametrize(
    ("time_base", "first_pts"),
    [(fractions.Fraction(1, 90000), 2**32 - 3 * 3000), (fractions.Fraction(1, 1000), 5000)],
    ids=["rtp-clock-wrapping", "millisecond-clock"],
)
async def test_transcoder_keeps_the_source_pts_and_arrival(
    time_base: fractions.Fraction, first_pts: int, long_gop_clips: dict[str, Clip]
) -> None:
    """Each H.264 packet has its VP8 input's pts (in 1/90000) and arrival, not the encoder's clock."""
    feed = QueueTrack("video")
    vp8 = TrackSource(kind="video", codec_name="vp8", track=feed, request_keyframe=lambda: True, label="t")
    vp8.start()
    inputs, outputs = _Collect(), _Collect()
    vp8.attach(inputs)
    transcoder = VideoTranscoder(vp8, label="t")
    transcoder.start()
    transcoder.source.attach(outputs, replay_gop=False)
    step = round(fractions.Fraction(1, 30) / time_base)
    try:
        for index, sample in enumerate(long_gop_clips["vp8"].samples[:20]):
            packet = av.Packet(sample.data)
            packet.pts = packet.dts = (first_pts + index * step) % 2**32
            packet.time_base = time_base
            packet.is_keyframe = sample.keyframe
            feed.push(packet)
            await asyncio.sleep(0.01)
        deadline = time.monotonic() + 10
        while len(outputs.items) < 20:
            assert time.monotonic() < deadline, len(outputs.items)
            await asyncio.sleep(0.01)
    finally:
        transcoder.close()
        await vp8.stop()
    assert outputs.items[0][2], "starts on an IDR"
    start = round(first_pts * time_base * 90000)
    expected = [start + round(index * step * time_base * 90000) for index in range(20)]
    # The wrapped 32-bit clock continues one frame on; otherwise the input pts, rescaled.
    assert [pts for pts, _, _ in outputs.items] == expected
    assert [arrival for _, arrival, _ in outputs.items] == [arrival for _, arrival, _ in inputs.items]


async def test_recorder_unwraps_rtp_timestamps(tmp_path: Path) -> None:
    """RTP timestamps are 32-bit: a wrap mid-recording continues the timeline (no collapse)."""
    video_clip, audio_clip = encode_h264(seconds=2.0, gop_frames=30), encode_opus(seconds=2.0)
    feeds = {"video": QueueTrack("video"), "audio": QueueTrack("audio")}
    sources = {
        kind: TrackSource(kind=kind, codec_name=name, track=feeds[kind], request_keyframe=lambda: True, label=kind)
        for kind, name in (("video", "H264"), ("audio", "opus"))
    }
    for source in sources.values():
        source.start()
    await asyncio.sleep(0.01)
    recorder = Recorder(path=tmp_path / "wrap.mp4", key=MANIFEST_KEY, room_id="wrap", sources=sources)
    recorder.start()
    # Wraps after 0.5 s of video and 1 s of audio.
    video_first, audio_first = 2**32 - 15 * 3000, 2**32 - 50 * 960
    for index in range(100):
        if index < len(video_clip.samples):
            sample = video_clip.samples[index]
            feeds["video"].push(_packet(sample.data, video_first + index * 3000, 90000, sample.keyframe))
        if index < len(audio_clip.samples):
            feeds["audio"].push(_packet(audio_clip.samples[index].data, audio_first + index * 960, 48000, True))
    await asyncio.sleep(0.2)  # let the sources dispatch what was queued
    await recorder.stop()
    for source in sources.values():
        await source.stop()
    tracks = read_tracks(tmp_path / "wrap.mp4")
    assert abs(tracks["video"].duration - len(video_clip.samples) / 30) < 0.05, tracks
    assert abs(tracks["audio"].duration - len(audio_clip.samples) * 0.02) < 0.05, tracks


def _packet(data: bytes, pts: int, clock: int, key: bool) -> Any:
    packet = av.Packet(data)
    packet.pts = packet.dts = pts % 2**32
    packet.time_base = fractions.Fraction(1, clock)
    packet.is_keyframe = key
    return packet
