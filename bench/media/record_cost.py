"""Recording cost: % of a core per recorded stream, without transcoding.

One synthetic 720p 1.5 Mbps H.264 + Opus publisher (in-process sources, no
network) runs ``--seconds`` with no recorder, then with ``--recorders``
recorders attached; the process CPU difference per recorder per second of
media is the cost of one recorded stream.

    .venv/bin/python -m bench.media.record_cost --seconds 10 --recorders 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from media_engine.forwarding import TrackSource
from media_engine.recording import Recorder
from media_engine.synthetic import ClipTrack, encode_h264, encode_opus


async def run(seconds: float, recorders: int, video: object, audio: object, root: Path) -> float:
    tracks = {"video": ClipTrack(video), "audio": ClipTrack(audio)}  # type: ignore[arg-type]
    sources = {
        kind: TrackSource(
            kind=kind, codec_name="H264" if kind == "video" else "opus", track=t, request_keyframe=lambda: True
        )
        for kind, t in tracks.items()
    }
    for s in sources.values():
        s.start()
    recs = [
        Recorder(path=root / f"r{i}.mp4", key=b"k" * 32, room_id=f"r{i}", sources=sources) for i in range(recorders)
    ]
    cpu0 = time.process_time()
    for r in recs:
        r.start()
    await asyncio.sleep(seconds)
    for r in recs:
        await r.stop()
    cpu = time.process_time() - cpu0
    for s in sources.values():
        await s.stop()
    for t in tracks.values():
        t.stop()
    return cpu


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--recorders", type=int, default=4)
    args = parser.parse_args()
    video = encode_h264(width=1280, height=720, fps=30, seconds=4.0, bitrate=1_500_000, gop_frames=60, noise=10)
    audio = encode_opus(seconds=4.0)
    with tempfile.TemporaryDirectory() as tmp:
        base = await run(args.seconds, 0, video, audio, Path(tmp))
        loaded = await run(args.seconds, args.recorders, video, audio, Path(tmp))
    per_stream = (loaded - base) / args.recorders / args.seconds * 100
    result = {
        "seconds": args.seconds,
        "recorders": args.recorders,
        "cpu_baseline_s": round(base, 3),
        "cpu_with_recorders_s": round(loaded, 3),
        "core_percent_per_stream": round(per_stream, 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
