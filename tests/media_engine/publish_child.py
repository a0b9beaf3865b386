"""Child process: a WebRTC publisher that can be SIGKILLed like a closed tab.

Prints its offer as one JSON line, reads the answer as one JSON line, then
publishes the looped clips until it is killed.
"""

from __future__ import annotations

import asyncio
import json
import sys

from media_engine.client import publish_clips
from media_engine.synthetic import encode_h264, encode_opus


async def main() -> None:
    loop = asyncio.get_running_loop()

    async def signal(sdp: str) -> str:
        print(json.dumps({"offer": sdp}), flush=True)
        line = await loop.run_in_executor(None, sys.stdin.readline)
        return str(json.loads(line)["answer"])

    await publish_clips(
        signal,
        encode_h264(width=320, height=240, fps=30, seconds=2.0, bitrate=400_000, gop_frames=30),
        encode_opus(seconds=2.0),
    )
    print(json.dumps({"publishing": True}), flush=True)
    await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main())
