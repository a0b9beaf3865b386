"""A WebRTC publisher (aiortc, synthetic H.264 + Opus) or an RTMP pusher (ffmpeg, H.264 + AAC)
pulled by the ffmpeg CLI as HTTP-FLV and HLS."""

from __future__ import annotations

import asyncio
import fractions
import shutil
import time
from pathlib import Path

import av
import pytest

from media_engine import MediaEngine, MediaError
from media_engine.audio import AacSource, AudioTranscoder
from media_engine.client import publish_clips
from media_engine.forwarding import TrackSource
from media_engine.grants import sign_grant, verify_grant
from media_engine.httpout import LiveHttpServer
from media_engine.live import FlvStream, LiveOutputs
from media_engine.room import Publisher
from media_engine.rtmp import QueueTrack, RtmpServer
from media_engine.synthetic import Clip, encode_vp8
from media_engine.video import VideoTranscoder

from .test_rtmp import ffmpeg_push, stop

pytestmark = pytest.mark.asyncio

KEY = b"p" * 32


def authorize(room_id: str, token: str) -> str:
    grant = verify_grant(token, key=KEY, purpose="room")
    if grant.get("room") != room_id or not grant.get("subscribe"):
        raise MediaError("grant.invalid", "授权凭证与房间或操作不符")
    return str(grant["peer"])


def grant(room_id: str) -> str:
    payload = {"purpose": "room", "room": room_id, "peer": "viewer", "publish": False, "subscribe": True}
    return sign_grant(payload, key=KEY, ttl_seconds=60)


async def ffmpeg_pull(url: str, out: Path, seconds: float) -> tuple[int, str]:
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg, "ffmpeg CLI missing"
    proc = await asyncio.create_subprocess_exec(
        ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-rw_timeout", "10000000",
        "-i", url, "-t", str(seconds), "-c", "copy", str(out),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    except TimeoutError:
        proc.kill()
        _, err = await proc.communicate()
    return proc.returncode or 0, err.decode(errors="replace")


def decodes_as_h264_and_aac(path: Path, sample_rate: int = 48000) -> dict[str, float]:
    """Decode the whole file with PyAV; returns seconds of video and audio decoded."""
    with av.open(str(path)) as container:
        codecs = sorted(s.codec_context.name for s in container.streams if s.type in ("video", "audio"))
        assert codecs == ["aac", "h264"], codecs
        video = audio = 0
        first_video: av.VideoFrame | None = None
        for frame in container.decode(*container.streams):
            if isinstance(frame, av.VideoFrame):
                video += 1
                first_video = first_video or frame
            elif isinstance(frame, av.AudioFrame):
                audio += frame.samples
                assert frame.sample_rate == sample_rate
        assert first_video is not None and (first_video.width, first_video.height) == (320, 240)
        return {"video_seconds": video / 30, "audio_seconds": audio / sample_rate}


@pytest.fixture
async def live(engine: MediaEngine, tmp_path: Path):  # type: ignore[no-untyped-def]
    server = LiveHttpServer(engine, authorize, LiveOutputs(tmp_path / "hls"))
    port = await server.start("127.0.0.1", 0)
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        await server.close()


async def test_webrtc_publisher_pulled_as_http_flv_and_hls(
    engine: MediaEngine, live: tuple[LiveHttpServer, str], video_clip: Clip, audio_clip: Clip, tmp_path: Path
) -> None:
    server, base = live
    room = engine.room("live-1")
    pub = await publish_clips(lambda sdp: room.publish("doctor", sdp), video_clip, audio_clip)
    try:
        await room.wait_publisher("doctor")
        token = grant("live-1")
        flv_out, hls_out = tmp_path / "pulled.flv", tmp_path / "pulled.ts"
        (flv_code, flv_err), (hls_code, hls_err) = await asyncio.gather(
            ffmpeg_pull(f"{base}/live/live-1.flv?grant={token}", flv_out, 3),
            ffmpeg_pull(f"{base}/hls/live-1/index.m3u8?grant={token}", hls_out, 2),
        )
        assert flv_code == 0, flv_err
        assert hls_code == 0, hls_err
        flv = decodes_as_h264_and_aac(flv_out)
        assert flv["video_seconds"] >= 2.5 and flv["audio_seconds"] >= 2.0, flv
        hls = decodes_as_h264_and_aac(hls_out)
        assert hls["video_seconds"] >= 1.5 and hls["audio_seconds"] >= 1.0, hls
        # Opus -> AAC ran once for the track, shared by the FLV viewer and the HLS remux.
        assert len(server.outputs.flv) == 1
        # A second FLV viewer joining late starts at once from the GOP cache.
        late_out = tmp_path / "late.flv"
        code, err = await ffmpeg_pull(f"{base}/live/live-1.flv?grant={token}", late_out, 1)
        assert code == 0, err
        with av.open(str(late_out)) as container:
            first = next(container.demux(video=0))
            assert first.is_keyframe
    finally:
        await pub.close()


async def test_vp8_publisher_is_transcoded_once_for_flv_viewers(
    engine: MediaEngine, live: tuple[LiveHttpServer, str], audio_clip: Clip, tmp_path: Path
) -> None:
    server, base = live
    room = engine.room("live-vp8")
    vp8 = encode_vp8(width=320, height=240, fps=30, seconds=2.0, gop_frames=30)
    pub = await publish_clips(lambda sdp: room.publish("browser", sdp), vp8, audio_clip)
    started = VideoTranscoder.started_total
    try:
        publisher = await room.wait_publisher("browser")
        assert publisher.sources["video"].codec_name.lower() == "vp8"
        # Nobody watches as FLV yet: nothing is transcoded.
        await asyncio.sleep(0.5)
        assert server.outputs.transcoders == 0 and VideoTranscoder.started_total == started
        token = grant("live-vp8")
        seen: list[int] = []
        done = asyncio.Event()

        async def watch() -> None:
            while not done.is_set():
                seen.append(server.outputs.transcoders)
                await asyncio.sleep(0.05)

        watcher = asyncio.ensure_future(watch())
        url = f"{base}/live/live-vp8.flv?grant={token}"
        outs = [tmp_path / "vp8-a.flv", tmp_path / "vp8-b.flv"]
        try:
            results = await asyncio.gather(*(ffmpeg_pull(url, out, 3) for out in outs))
        finally:
            done.set()
            await watcher
        for code, err in results:
            assert code == 0, err
        for out in outs:
            got = decodes_as_h264_and_aac(out)
            assert got["video_seconds"] >= 2.0 and got["audio_seconds"] >= 1.5, got
        # Two viewers, one encoder: the transcode runs once per track.
        assert max(seen) == 1, seen
        assert VideoTranscoder.started_total == started + 1
        # The last viewer left: the transcoder stopped with the stream.
        for _ in range(100):
            if server.outputs.transcoders == 0:
                break
            await asyncio.sleep(0.05)
        assert server.outputs.transcoders == 0
    finally:
        await pub.close()


async def test_pull_without_grant_is_refused(live: tuple[LiveHttpServer, str], tmp_path: Path) -> None:
    _, base = live
    code, err = await ffmpeg_pull(f"{base}/live/live-2.flv?grant=forged", tmp_path / "x.flv", 1)
    assert code != 0 and "403" in err


async def test_vp8_publisher_is_recorded_as_h264_sharing_the_flv_transcode(
    engine: MediaEngine, audio_clip: Clip, tmp_path: Path
) -> None:
    from media_engine.node import MediaNode

    node_key, manifest = b"n" * 32, b"m" * 32
    events: list[dict[str, object]] = []
    node = MediaNode(
        engine, name="t", grant_key=node_key, manifest_key=manifest, recordings_root=tmp_path, emit=events.append
    )

    def command(cmd: str, **data: object) -> dict[str, object]:
        token = sign_grant({"purpose": "node", "cmd": cmd, "room": "rec-vp8"}, key=node_key, ttl_seconds=60)
        return {"cmd": cmd, "room": "rec-vp8", "grant": token, **data}

    room = engine.room("rec-vp8")
    vp8 = encode_vp8(width=320, height=240, fps=30, seconds=2.0, gop_frames=30)
    pub = await publish_clips(lambda sdp: room.publish("browser", sdp), vp8, audio_clip)
    outputs = LiveOutputs(tmp_path / "hls")
    started = VideoTranscoder.started_total
    try:
        publisher = await room.wait_publisher("browser")
        result = await node.handle(command("record.start", recording="r1"))
        assert result["ok"], result
        # An FLV viewer of the same track shares the recorder's transcode.
        stream = outputs.flv_stream("rec-vp8", publisher)
        viewer = stream.add_viewer()
        assert VideoTranscoder.started_total == started + 1
        await asyncio.sleep(2.0)
        stopped = await node.handle(command("record.stop"))
        assert stopped["ok"], stopped
        assert viewer.pending > 0  # the FLV viewer got bytes from the same transcoder
        outputs.close()
        assert VideoTranscoder.running == 0
    finally:
        outputs.close()
        await node.close()
        await pub.close()
    path = tmp_path / "rec-vp8" / "r1.mp4"
    with av.open(str(path)) as container:
        assert sorted(s.codec_context.name for s in container.streams) == ["h264", "opus"]
        frames = list(container.decode(video=0))
        assert len(frames) >= 40 and (frames[0].width, frames[0].height) == (320, 240)


async def test_rtmp_publisher_aac_passes_through_to_flv_and_hls(
    engine: MediaEngine, live: tuple[LiveHttpServer, str], tmp_path: Path
) -> None:
    server, base = live
    rtmp = RtmpServer(engine, lambda room, token: "pusher")
    port = await rtmp.start("127.0.0.1", 0)
    started = dict(AudioTranscoder.started)
    # ffmpeg pushes H.264 + AAC at 44.1 kHz; any transcode would come out at 48 kHz.
    push = await ffmpeg_push(f"rtmp://127.0.0.1:{port}/live/live-rtmp?grant=x", 8)
    try:
        publisher = await engine.room("live-rtmp").wait_publisher("pusher", timeout=10)
        assert isinstance(publisher.aac_audio, AacSource) and publisher.aac_audio.codec_name == "aac"
        assert publisher.sources["audio"].codec_name == "opus"  # for WebRTC subscribers
        token = grant("live-rtmp")
        flv_out, hls_out = tmp_path / "rtmp.flv", tmp_path / "rtmp.ts"
        (flv_code, flv_err), (hls_code, hls_err) = await asyncio.gather(
            ffmpeg_pull(f"{base}/live/live-rtmp.flv?grant={token}", flv_out, 3),
            ffmpeg_pull(f"{base}/hls/live-rtmp/index.m3u8?grant={token}", hls_out, 2),
        )
        assert flv_code == 0, flv_err
        assert hls_code == 0, hls_err
        flv = decodes_as_h264_and_aac(flv_out, sample_rate=44100)
        assert flv["video_seconds"] >= 2.5 and flv["audio_seconds"] >= 2.0, flv
        hls = decodes_as_h264_and_aac(hls_out, sample_rate=44100)
        assert hls["video_seconds"] >= 1.5 and hls["audio_seconds"] >= 1.0, hls
        # The pusher's AudioSpecificConfig is the FLV's, byte for byte.
        with av.open(str(flv_out)) as container:
            assert bytes(container.streams.audio[0].codec_context.extradata or b"") == publisher.aac_audio.extradata
        # No Opus -> AAC for the FLV/HLS viewers, and no AAC -> Opus without a WebRTC subscriber.
        assert AudioTranscoder.started.get("opus->aac", 0) == started.get("opus->aac", 0)
        assert AudioTranscoder.started.get("aac->opus", 0) == started.get("aac->opus", 0)
        assert len(server.outputs.flv) == 1  # one FLV stream, shared by the viewer and the HLS remux
    finally:
        await stop(push)
        await rtmp.close()


def flv_tags(data: bytes) -> list[tuple[int, int, bytes]]:
    """(type, ms, body) of the tags of an FLV byte stream."""
    assert data[:3] == b"FLV"
    tags, i = [], 13
    while i + 11 <= len(data):
        size = int.from_bytes(data[i + 1 : i + 4], "big")
        ms = int.from_bytes(data[i + 4 : i + 7], "big") | data[i + 7] << 24
        tags.append((data[i], ms, data[i + 11 : i + 11 + size]))
        i += 11 + size + 4
    return tags


async def test_passed_through_aac_keeps_the_pushers_timeline_in_flv(video_clip: Clip) -> None:
    """Audio that arrives 150 ms late relative to its RTMP timestamp still lands on the video's ms."""
    ms_tb = fractions.Fraction(1, 1000)
    video = TrackSource(kind="video", codec_name="H264", track=QueueTrack("video"), request_keyframe=lambda: True)
    asc = bytes([0x12, 0x10])  # AAC-LC, 44.1 kHz, stereo
    aac = AacSource(track=QueueTrack("audio"), extradata=asc)
    publisher = Publisher(peer_id="pusher", pc=None, aac_audio=aac)
    publisher.sources["video"] = video
    started = AudioTranscoder.started.get("opus->aac", 0)
    stream = FlvStream("sync", publisher)
    stream.start()
    viewer = stream.add_viewer()
    t0 = time.monotonic()
    # The pusher's timeline starts at 5000 ms; video on it with no skew, audio 150 ms behind.
    for i, sample in enumerate(video_clip.samples[:30]):
        packet = av.Packet(sample.data)
        packet.pts = packet.dts = (5000 + i * 33) * 90
        packet.time_base = fractions.Fraction(1, 90000)
        packet.is_keyframe = sample.keyframe
        video._dispatch(packet, t0 + i * 0.033)
        if i >= 5:  # audio frame k (timestamp 5000 + k*33 ms) arrives 150 ms after its video frame
            k = i - 5
            frame = av.Packet(b"\x21\x00" + bytes(40))
            frame.pts = 5000 + k * 33
            frame.time_base = ms_tb
            aac._dispatch(frame, t0 + k * 0.033 + 0.150)
    chunks = []
    while not viewer.queue.empty():
        chunk = viewer.queue.get_nowait()
        assert chunk is not None
        chunks.append(chunk)
    tags = flv_tags(b"".join(chunks))
    stream.close()
    assert AudioTranscoder.started.get("opus->aac", 0) == started
    seq = [body for kind, _, body in tags if kind == 8 and body[1] == 0]
    assert seq == [b"\xaf\x00" + asc]
    video_ms = [ms for kind, ms, body in tags if kind == 9 and body[1] == 1]
    audio_ms = [ms for kind, ms, body in tags if kind == 8 and body[1] == 1]
    assert video_ms[:3] == [0, 33, 66]
    # Audio timestamp 5000 + k*33 -> ms k*33 on the video's timeline, however late it arrived.
    assert audio_ms == [k * 33 for k in range(len(audio_ms))], audio_ms
    assert len(audio_ms) == 25
