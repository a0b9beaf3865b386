"""A publisher that dies without a goodbye (a killed tab) is noticed within seconds,
republishes at once, and its players resume on the new keyframe without a new offer."""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from pathlib import Path

import av
import pytest

from media_engine import MediaEngine
from media_engine.client import subscribe

pytestmark = pytest.mark.asyncio

REPO = Path(__file__).resolve().parents[2]


async def start_child_publisher(engine: MediaEngine, room_id: str, peer: str) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.media_engine.publish_child",
        cwd=REPO, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdin is not None
    offer = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))["offer"]
    answer = await engine.room(room_id).publish(peer, offer)
    proc.stdin.write((json.dumps({"answer": answer}) + "\n").encode())
    await proc.stdin.drain()
    assert json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))["publishing"]
    return proc


async def test_killed_publisher_is_detected_republishes_and_players_resume(engine: MediaEngine) -> None:
    events: list[tuple[float, str, dict[str, object]]] = []
    engine._on_event = lambda kind, data: events.append((time.monotonic(), kind, data))
    room = engine.room("tab")
    first = await start_child_publisher(engine, "tab", "patient")
    stamps: list[int] = []  # pts of every decoded video frame

    def on_item(item: object, arrival: float) -> None:
        if isinstance(item, av.VideoFrame) and item.pts is not None:
            stamps.append(int(item.pts))

    # The player decodes, as a real one does.
    player = await subscribe(
        lambda sdp: room.subscribe("doctor", sdp, publisher_id="patient"), encoded=False, on_item=on_item
    )
    try:
        await player.wait_count("video", 30, timeout=20)
        await player.wait_count("audio", 20, timeout=20)
        pc_before = player.pc
        first.kill()  # no DTLS close, no BYE: the tab is simply gone
        killed_at = time.monotonic()
        await first.wait()
        deadline = killed_at + 10
        while "patient" in room.publishers and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        detected_after = time.monotonic() - killed_at
        assert "patient" not in room.publishers, "a dead publisher is still in the room after 10 s"
        assert detected_after < 5.0, f"dead publisher noticed after {detected_after:.1f} s"
        assert any(kind == "publisher.lost" for _, kind, _ in events)
        # The player is still connected, parked, waiting for the same peer.
        assert "doctor" in room.subscribers
        video_before = player.received["video"].count
        audio_before = player.received["audio"].count

        # The same user republishes at once (no media.already_publishing), from a new "tab".
        second = await start_child_publisher(engine, "tab", "patient")
        try:
            assert "patient" in room.publishers
            await player.wait_count("video", video_before + 30, timeout=15)
            await player.wait_count("audio", audio_before + 20, timeout=15)
            # Same peer connection, no renegotiation: the player decodes frames of the new publisher.
            assert player.pc is pc_before and player.pc.connectionState == "connected"
            track = room.subscribers["doctor"].tracks["video"]
            assert track.source is room.publishers["patient"].sources["video"]
            # Timestamps carried on across the switch: no jump back to the new publisher's zero.
            # (RTP timestamps are 32-bit: compare forward distance modulo 2**32.)
            steps = [(b - a) % 2**32 for a, b in itertools.pairwise(stamps)]
            assert len(stamps) > video_before + 20 and all(0 <= s < 2**31 for s in steps), "pts went backwards"
        finally:
            second.kill()
            await second.wait()
    finally:
        await player.close()
        if first.returncode is None:
            first.kill()
            await first.wait()
