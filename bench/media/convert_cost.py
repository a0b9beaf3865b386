"""Protocol conversion cost: % of a core per stream for RTMP ingest and HTTP-FLV out.

RTMP ingest (WeChat live-pusher -> room): ``--streams`` ffmpeg processes push
a pre-encoded 720p 1.5 Mbps H.264 + AAC (44.1 kHz, 128 kbit/s) FLV file with
``-c copy`` (their CPU is not ours) to the engine's RTMP port; we read the
bench process's CPU for ``--seconds``: once with audio (AAC -> Opus once per
track) and once with the same pushes video-only, so the difference is the
audio transcode.

HTTP-FLV out (room -> WeChat live-player): ``--streams`` in-process synthetic
publishers (720p 1.5 Mbps H.264 + Opus, no network) each get an FLV stream with
one viewer draining its bytes; CPU with the FLV streams minus CPU of the same
publishers without them is the cost of FLV out (H.264 repackaged,
Opus -> AAC once per track); the video-only variant isolates the audio part.
A VP8 720p publisher (video only) gives the cost of VP8 -> H.264 for FLV.

    .venv/bin/python -m bench.media.convert_cost --seconds 10 --streams 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from media_engine import MediaEngine
from media_engine.forwarding import TrackSource
from media_engine.live import FlvStream
from media_engine.room import Publisher
from media_engine.rtmp import RtmpServer
from media_engine.synthetic import ClipTrack, encode_h264, encode_opus, encode_vp8

FFMPEG = shutil.which("ffmpeg") or "ffmpeg"


def make_flv(path: Path) -> None:
    subprocess.run(
        [
            FFMPEG, "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
            "-t", "12", "-c:v", "libx264", "-profile:v", "baseline", "-preset", "veryfast",
            "-b:v", "1500k", "-maxrate", "1500k", "-bufsize", "3000k", "-g", "60",
            "-c:a", "aac", "-b:a", "128k", "-f", "flv", str(path),
        ],
        check=True,
    )  # fmt: skip


async def wait_for(condition: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.05)


async def rtmp_ingest(flv: Path, streams: int, seconds: float, *, audio: bool) -> dict[str, Any]:
    engine = MediaEngine()
    server = RtmpServer(engine, lambda room, token: f"pusher-{room}")
    port = await server.start("127.0.0.1", 0)
    pushers = []
    for i in range(streams):
        # fmt: off
        args = [
            "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", str(flv),
            *([] if audio else ["-an"]), "-c", "copy", "-f", "flv", f"rtmp://127.0.0.1:{port}/live/r{i}",
        ]
        # fmt: on
        pushers.append(
            await asyncio.create_subprocess_exec(
                FFMPEG, *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
            )
        )
    try:
        kinds = 2 if audio else 1
        await wait_for(
            lambda: (
                sum(len(p.sources) for r in engine.rooms.values() for p in r.publishers.values()) == streams * kinds
            ),
            15,
        )
        await asyncio.sleep(1.0)  # past the start-up burst of -re
        sessions = list(server.sessions)
        frames0 = sum(s.video_frames + s.audio_frames for s in sessions)
        cpu0, wall0 = time.process_time(), time.monotonic()
        await asyncio.sleep(seconds)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        frames = sum(s.video_frames + s.audio_frames for s in sessions) - frames0
    finally:
        for p in pushers:
            if p.returncode is None:
                p.kill()
            await p.wait()
        await server.close()
        await engine.close()
    return {"cpu_s": round(cpu, 3), "wall_s": round(wall, 2), "frames": frames}


async def flv_out(
    video: Any, audio: Any, streams: int, seconds: float, *, flv: bool, with_audio: bool
) -> dict[str, Any]:
    engine = MediaEngine()
    tracks: list[ClipTrack] = []
    outputs: list[FlvStream] = []
    drains: list[asyncio.Task[int]] = []

    async def drain(viewer: Any) -> int:
        total = 0
        while (chunk := await viewer.get()) is not None:
            total += len(chunk)
        return total

    for i in range(streams):
        clips = [video, audio] if with_audio else [video]
        publisher = Publisher(peer_id=f"p{i}", pc=None)
        for clip in clips:
            track = ClipTrack(clip)
            tracks.append(track)
            publisher.sources[clip.kind] = TrackSource(
                kind=clip.kind,
                codec_name=clip.codec if clip.kind == "video" else "opus",
                track=track,
                request_keyframe=lambda: True,
            )
        await engine.room(f"r{i}").add_publisher(publisher)
        if flv:
            stream = FlvStream(f"r{i}", publisher)
            stream.start()
            outputs.append(stream)
            drains.append(asyncio.ensure_future(drain(stream.add_viewer())))
    await asyncio.sleep(1.0)
    tags0 = sum(s.tags_out for s in outputs)
    cpu0 = time.process_time()
    await asyncio.sleep(seconds)
    cpu = time.process_time() - cpu0
    tags = sum(s.tags_out for s in outputs) - tags0
    for stream in outputs:
        stream.close()
    sent = sum(await asyncio.gather(*drains))
    await engine.close()
    for track in tracks:
        track.stop()
    return {"cpu_s": round(cpu, 3), "tags": tags, "bytes": sent}


def per_stream(loaded: float, base: float, streams: int, seconds: float) -> float:
    return round((loaded - base) / streams / seconds * 100, 2)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--streams", type=int, default=2)
    args = parser.parse_args()
    n, s = args.streams, args.seconds
    result: dict[str, Any] = {"seconds": s, "streams": n}
    with tempfile.TemporaryDirectory() as tmp:
        flv = Path(tmp) / "in.flv"
        make_flv(flv)
        av_in = await rtmp_ingest(flv, n, s, audio=True)
        v_in = await rtmp_ingest(flv, n, s, audio=False)
    result["rtmp_ingest"] = {
        "with_aac": av_in,
        "video_only": v_in,
        "core_percent_per_stream": per_stream(av_in["cpu_s"], 0.0, n, s),
        "video_only_core_percent_per_stream": per_stream(v_in["cpu_s"], 0.0, n, s),
        "aac_to_opus_core_percent_per_stream": per_stream(av_in["cpu_s"], v_in["cpu_s"], n, s),
    }
    video = encode_h264(width=1280, height=720, fps=30, seconds=4.0, bitrate=1_500_000, gop_frames=60, noise=10)
    audio = encode_opus(seconds=4.0)
    base_av = await flv_out(video, audio, n, s, flv=False, with_audio=True)
    flv_av = await flv_out(video, audio, n, s, flv=True, with_audio=True)
    base_v = await flv_out(video, audio, n, s, flv=False, with_audio=False)
    flv_v = await flv_out(video, audio, n, s, flv=True, with_audio=False)
    av_cost = per_stream(flv_av["cpu_s"], base_av["cpu_s"], n, s)
    v_cost = per_stream(flv_v["cpu_s"], base_v["cpu_s"], n, s)
    result["flv_out"] = {
        "publishers_only": base_av,
        "with_flv": flv_av,
        "video_only_publishers": base_v,
        "video_only_with_flv": flv_v,
        "core_percent_per_stream": av_cost,
        "video_only_core_percent_per_stream": v_cost,
        "opus_to_aac_core_percent_per_stream": round(av_cost - v_cost, 2),
    }
    # A browser publishing VP8: FLV out adds VP8 -> H.264 once per track (video only here).
    vp8 = encode_vp8(width=1280, height=720, fps=30, seconds=4.0, bitrate=1_500_000, gop_frames=60, noise=10)
    base_vp8 = await flv_out(vp8, audio, n, s, flv=False, with_audio=False)
    flv_vp8 = await flv_out(vp8, audio, n, s, flv=True, with_audio=False)
    result["flv_out_vp8"] = {
        "publishers_only": base_vp8,
        "with_flv": flv_vp8,
        "vp8_to_h264_core_percent_per_stream": per_stream(flv_vp8["cpu_s"], base_vp8["cpu_s"], n, s),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
