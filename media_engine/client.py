"""Loopback WebRTC clients (aiortc) for probes, load generators and tests.

``signal`` is any coroutine that takes an SDP offer and returns the answer:
``room.publish``/``room.subscribe`` in-process, or an HTTP WHIP/WHEP POST.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import av
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from .codecs import h264_only_preferences, video_codec_preferences
from .receiver import use_encoded
from .synthetic import Clip, ClipTrack

Signal = Callable[[str], Awaitable[str]]


@dataclass
class PublisherClient:
    pc: RTCPeerConnection
    tracks: dict[str, ClipTrack]

    async def close(self) -> None:
        await self.pc.close()


async def publish_clips(
    signal: Signal, *clips: Clip, stamp: Callable[[bytes, int], bytes] | None = None
) -> PublisherClient:
    """Publish pre-encoded clips (H.264 or VP8 video, Opus audio) through ``signal``."""
    pc = RTCPeerConnection()
    tracks: dict[str, ClipTrack] = {}
    for clip in clips:
        track = ClipTrack(clip, stamp=stamp if clip.kind == "video" else None)
        transceiver = pc.addTransceiver(track, direction="sendonly")
        if clip.kind == "video" and clip.codec.upper() == "VP8":
            transceiver.setCodecPreferences(
                [c for c in video_codec_preferences() if c.mimeType.lower() in ("video/vp8", "video/rtx")]
            )
        elif clip.kind == "video":
            transceiver.setCodecPreferences(h264_only_preferences())
        track.bind_sender(transceiver.sender)
        tracks[clip.kind] = track
    await pc.setLocalDescription(await pc.createOffer())
    answer = await signal(pc.localDescription.sdp)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    return PublisherClient(pc=pc, tracks=tracks)


@dataclass
class Received:
    """What a subscriber track got: counts, first arrival, optional samples."""

    kind: str
    count: int = 0
    keyframes: int = 0
    first_at: float | None = None
    first_is_keyframe: bool | None = None
    first_frame: Any = None
    items: list[Any] = field(default_factory=list)
    keep: int = 0
    ended: bool = False
    got_first: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class SubscriberClient:
    pc: RTCPeerConnection
    received: dict[str, Received]
    connected_at: float | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def close(self) -> None:
        await self.pc.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def wait_first(self, kind: str, timeout: float = 10.0) -> Received:
        got = self.received[kind]
        await asyncio.wait_for(got.got_first.wait(), timeout)
        return got

    async def wait_count(self, kind: str, count: int, timeout: float = 10.0) -> Received:
        got = self.received[kind]
        deadline = time.monotonic() + timeout
        while got.count < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{kind}: {got.count} of {count} frames")
            await asyncio.sleep(0.02)
        return got


async def _consume(track: MediaStreamTrack, got: Received, on_item: Callable[[Any, float], None] | None) -> None:
    try:
        while True:
            item = await track.recv()
            now = time.monotonic()
            got.count += 1
            key = bool(item.is_keyframe) if isinstance(item, av.Packet) else True
            got.keyframes += int(key)
            if got.first_at is None:
                got.first_at = now
                got.first_is_keyframe = key
                got.first_frame = item
                got.got_first.set()
            if len(got.items) < got.keep:
                got.items.append(item)
            if on_item is not None:
                on_item(item, now)
    except MediaStreamError:
        got.ended = True


async def subscribe(
    signal: Signal,
    *,
    kinds: tuple[str, ...] = ("video", "audio"),
    encoded: bool = True,
    keep: int = 0,
    on_item: Callable[[Any, float], None] | None = None,
) -> SubscriberClient:
    """Offer recvonly transceivers and consume what arrives (encoded or decoded)."""
    pc = RTCPeerConnection()
    for kind in kinds:
        pc.addTransceiver(kind, direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    answer = await signal(pc.localDescription.sdp)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    client = SubscriberClient(pc=pc, received={})

    @pc.on("connectionstatechange")
    def on_state() -> None:
        if pc.connectionState == "connected" and client.connected_at is None:
            client.connected_at = time.monotonic()

    for transceiver in pc.getTransceivers():
        receiver = transceiver.receiver
        track = use_encoded(receiver) if encoded else receiver.track
        got = Received(kind=transceiver.kind, keep=keep)
        client.received[transceiver.kind] = got
        client.tasks.append(asyncio.ensure_future(_consume(track, got, on_item)))
    return client
