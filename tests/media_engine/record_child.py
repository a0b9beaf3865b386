"""Child process for the crash test: publish, record, report, then wait to be killed."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from media_engine import MediaEngine
from media_engine.client import publish_clips
from media_engine.recording import Recorder
from media_engine.synthetic import encode_h264, encode_opus


async def main(path: Path) -> None:
    engine = MediaEngine()
    room = engine.room("crash")
    await publish_clips(
        lambda sdp: room.publish("doctor", sdp),
        encode_h264(seconds=2.0, gop_frames=15),
        encode_opus(seconds=2.0),
    )
    publisher = await room.wait_publisher("doctor")
    recorder = Recorder(path=path, key=b"k" * 32, room_id="crash", sources=publisher.sources)
    recorder.start()
    deadline = time.monotonic() + 20
    while recorder._tracks["video"].packets < 75 and time.monotonic() < deadline:  # 2.5 s of video
        await asyncio.sleep(0.05)
    print("RECORDING", flush=True)
    await asyncio.sleep(60)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
