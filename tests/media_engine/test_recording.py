"""Recording: fragmented MP4 without transcoding, A/V sync, sealed manifest, crash safety."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import av

from media_engine import MediaEngine
from media_engine.client import publish_clips
from media_engine.recording import Recorder, recover_manifest, verify_manifest
from media_engine.synthetic import Clip

from .conftest import avcc_units, nal_units

KEY = b"r" * 32
ROOT = Path(__file__).resolve().parents[2]


async def wait_until(condition: Callable[[], bool], *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def read_timeline(path: Path) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"video": [], "audio": []}
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.pts is not None:
                times[packet.stream.type].append(float(packet.pts * packet.time_base))
    return times


async def test_recording_has_both_tracks_in_sync_and_a_sealed_manifest(
    engine: MediaEngine, video_clip: Clip, audio_clip: Clip, tmp_path: Path
) -> None:
    room = engine.room("r-rec")
    pub = await publish_clips(lambda sdp: room.publish("doctor", sdp), video_clip, audio_clip)
    try:
        publisher = await room.wait_publisher("doctor")
        recorder = Recorder(path=tmp_path / "r.mp4", key=KEY, room_id="r-rec", sources=publisher.sources)
        recorder.start()
        # Time the recording from the first keyframe, not from the offer.
        await wait_until(lambda: publisher.sources["video"].keyframes_in > 0, timeout=10)
        await asyncio.sleep(3.0)  # the recording's length, not a wait for something
        manifest = await recorder.stop()
    finally:
        await pub.close()

    times = read_timeline(tmp_path / "r.mp4")
    with av.open(str(tmp_path / "r.mp4")) as container:
        codecs = {s.type: s.codec_context.name for s in container.streams}
        assert codecs == {"video": "h264", "audio": "opus"}
        first_video = next(container.demux(video=0))
        assert first_video.is_keyframe
        # Not transcoded: the recorded frames are the published bitstream.
        originals = {nal_units(s.data) for s in video_clip.samples}
        assert avcc_units(bytes(first_video)) in originals
        decoded = sum(1 for _ in container.decode(video=0))
    video, audio = times["video"], times["audio"]
    assert 2.4 <= video[-1] - video[0] <= 3.2
    assert decoded >= 70
    # A/V in sync: the tracks start and end together (within 80 ms).
    assert abs(video[0] - audio[0]) < 0.08, (video[0], audio[0])
    assert abs(video[-1] - audio[-1]) < 0.08, (video[-1], audio[-1])
    # Audio is continuous: 20 ms frames, no holes bigger than a frame or two.
    gaps = [b - a for a, b in itertools.pairwise(audio)]
    assert max(gaps) < 0.065

    assert manifest["tracks"] == [
        {"kind": "video", "codec": "h264", "packets": len(video)},
        {"kind": "audio", "codec": "opus", "packets": len(audio)},
    ]
    assert 2.4 <= manifest["duration_seconds"] <= 3.3
    on_disk = json.loads((tmp_path / "r.manifest.json").read_text())
    assert on_disk == manifest
    assert verify_manifest(on_disk, KEY, tmp_path / "r.mp4")
    assert not verify_manifest({**on_disk, "duration_seconds": 1.0}, KEY)
    assert not verify_manifest(on_disk, b"x" * 32)
    with (tmp_path / "r.mp4").open("ab") as f:
        f.write(b"\0")
    assert not verify_manifest(on_disk, KEY, tmp_path / "r.mp4")


def test_sigkill_mid_recording_leaves_a_playable_file(tmp_path: Path) -> None:
    path = tmp_path / "crash.mp4"
    child = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("record_child.py")), str(path)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.strip() == "RECORDING"
        child.send_signal(signal.SIGKILL)
        assert child.wait(10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(5)
    assert not path.with_suffix(".manifest.json").exists()
    with av.open(str(path)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    with av.open(str(path)) as container:
        audio_frames = sum(1 for _ in container.decode(audio=0))
    # 2.5 s written with 0.5 s fragments: at least the first 2 s are complete.
    assert frames >= 60, frames
    assert audio_frames >= 90, audio_frames
    manifest = recover_manifest(path, KEY, room="crash")
    assert manifest["recovered"] is True
    assert manifest["duration_seconds"] >= 2.0
    assert verify_manifest(manifest, KEY, path)
