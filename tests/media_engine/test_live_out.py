"""A WebRTC publisher (aiortc, synthetic H.264 + Opus) pulled by the ffmpeg CLI as HTTP-FLV and HLS."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import av
import pytest

from media_engine import MediaEngine, MediaError
from media_engine.client import publish_clips
from media_engine.grants import sign_grant, verify_grant
from media_engine.httpout import LiveHttpServer
from media_engine.live import LiveOutputs
from media_engine.synthetic import Clip, encode_vp8
from media_engine.video import VideoTranscoder

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


def decodes_as_h264_and_aac(path: Path) -> dict[str, float]:
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
                assert frame.sample_rate == 48000
        assert first_video is not None and (first_video.width, first_video.height) == (320, 240)
        return {"video_seconds": video / 30, "audio_seconds": audio / 48000}


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
