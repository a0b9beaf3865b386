"""Encoded fan-out: one source per published track, bounded sinks per consumer."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av.frame import Frame

from .codecs import EncodedPacket

log = logging.getLogger(__name__)

PLI_INTERVAL_SECONDS = 1.0
# A GOP longer than this (frames) is not cached: the source waits for the next keyframe.
GOP_CACHE_MAX_FRAMES = 300
SUBSCRIBER_QUEUE_FRAMES = {"video": 360, "audio": 100}


class PacketSink(Protocol):
    """Anything fed by a :class:`TrackSource` (subscriber track, recorder, muxer)."""

    def offer(self, packet: EncodedPacket, arrival: float) -> None: ...

    def source_ended(self) -> None: ...


class TrackSource:
    """Reads encoded packets of one published track and fans them out.

    Keeps the current GOP (video) so a new sink starts at once on its keyframe,
    and forwards keyframe requests upstream at most once per
    ``PLI_INTERVAL_SECONDS`` (a request inside the interval is sent when it ends,
    never dropped).
    """

    def __init__(
        self,
        *,
        kind: str,
        codec_name: str,
        track: MediaStreamTrack,
        request_keyframe: Callable[[], bool],
        label: str = "",
    ) -> None:
        self.kind = kind
        self.codec_name = codec_name
        self.label = label
        self._track = track
        self._request_upstream = request_keyframe
        self._sinks: list[PacketSink] = []
        self._gop: list[tuple[EncodedPacket, float]] = []
        self._last_pli = 0.0
        self._pli_pending: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self.ended = asyncio.Event()
        self.started_at = time.monotonic()
        self.last_packet_at: float | None = None
        # Timeline continuity when this source replaces another of the same peer:
        # packets are shifted so they follow ``_continue_at`` (the old source's next pts).
        self._continue_at: int | None = None
        self._pts_offset = 0
        self.last_pts: int | None = None
        self.packets_in = 0
        self.keyframes_in = 0
        self.pli_sent = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._end()

    def _end(self) -> None:
        if not self.ended.is_set():
            self.ended.set()
            if self._pli_pending is not None:
                self._pli_pending.cancel()
            for sink in list(self._sinks):
                sink.source_ended()
            self._sinks.clear()
            log.info("source %s ended after %d packets", self.label, self.packets_in)

    async def _run(self) -> None:
        try:
            while True:
                packet = await self._track.recv()
                assert not isinstance(packet, Frame), "source track must be encoded"
                self._dispatch(packet, time.monotonic())
        except MediaStreamError:
            pass
        finally:
            self._end()

    def continue_after(self, previous: TrackSource) -> None:
        """Carry on ``previous``'s timeline (a republish of the same peer): subscribers see
        monotonic timestamps across the switch, no jump back to the new publisher's zero."""
        if previous.last_pts is not None:
            step = 3000 if self.kind == "video" else 960  # one frame at 90 kHz / 20 ms at 48 kHz
            self._continue_at = previous.last_pts + previous._pts_offset + step

    def _dispatch(self, packet: EncodedPacket, arrival: float) -> None:
        self.packets_in += 1
        self.last_packet_at = arrival
        if packet.pts is not None:
            if self._continue_at is not None:
                self._pts_offset = self._continue_at - packet.pts
                self._continue_at = None
            self.last_pts = packet.pts
            if self._pts_offset:
                packet.pts += self._pts_offset
                if packet.dts is not None:
                    packet.dts += self._pts_offset
        if self.kind == "video":
            if packet.is_keyframe:
                self.keyframes_in += 1
                self._gop = [(packet, arrival)]
            elif self._gop:
                if len(self._gop) < GOP_CACHE_MAX_FRAMES:
                    self._gop.append((packet, arrival))
                else:
                    self._gop = []
        for sink in self._sinks:
            sink.offer(packet, arrival)

    @property
    def has_keyframe(self) -> bool:
        return bool(self._gop)

    def attach(self, sink: PacketSink, *, replay_gop: bool = True) -> None:
        """Feed ``sink`` from now on; a video sink first gets the cached GOP."""
        if self.ended.is_set():
            sink.source_ended()
            return
        if self.kind == "video":
            if replay_gop and self._gop:
                for packet, arrival in self._gop:
                    sink.offer(packet, arrival)
            else:
                self.request_keyframe()
        self._sinks.append(sink)

    def detach(self, sink: PacketSink) -> None:
        if sink in self._sinks:
            self._sinks.remove(sink)

    def movable_sinks(self) -> list[ForwardedTrack]:
        """The subscriber tracks fed by this source (they can follow a republish)."""
        return [sink for sink in self._sinks if isinstance(sink, ForwardedTrack)]

    @property
    def sink_count(self) -> int:
        return len(self._sinks)

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe, throttled per source."""
        if self.kind != "video" or self.ended.is_set():
            return
        now = time.monotonic()
        wait = self._last_pli + PLI_INTERVAL_SECONDS - now
        if wait <= 0:
            self._send_pli(now)
        elif self._pli_pending is None:
            self._pli_pending = asyncio.get_running_loop().call_later(wait, self._deferred_pli)

    def _deferred_pli(self) -> None:
        self._pli_pending = None
        self._send_pli(time.monotonic())

    def _send_pli(self, now: float) -> None:
        if self._request_upstream():
            self._last_pli = now
            self.pli_sent += 1
        elif self._pli_pending is None:
            # SSRC not learnt yet: try again shortly.
            self._pli_pending = asyncio.get_running_loop().call_later(0.1, self._deferred_pli)


class ForwardedTrack(MediaStreamTrack):
    """A subscriber's view of a source: yields the source's ``EncodedPacket`` objects.

    Starts on a keyframe. Its queue is bounded: when the subscriber falls
    behind, the backlog is dropped and the track waits for the next keyframe
    (asking the source for one) instead of holding the room back.
    """

    def __init__(self, source: TrackSource, *, max_queue: int | None = None) -> None:
        super().__init__()
        self.kind = source.kind
        self.source = source
        self._max = max_queue or SUBSCRIBER_QUEUE_FRAMES.get(source.kind, 200)
        self._queue: deque[EncodedPacket | None] = deque()
        self._wakeup = asyncio.Event()
        self._need_keyframe = source.kind == "video"
        self.packets_out = 0
        self.dropped = 0
        self.resyncs = 0
        self.first_packet_at: float | None = None
        self.attached_at = time.monotonic()
        source.attach(self)

    def offer(self, packet: EncodedPacket, arrival: float) -> None:
        if self.readyState != "live":
            return
        if self._need_keyframe:
            if not packet.is_keyframe:
                return
            self._need_keyframe = False
        if len(self._queue) >= self._max:
            # Slow subscriber: drop the backlog and restart on the next keyframe.
            self.dropped += len(self._queue)
            self._queue.clear()
            self.resyncs += 1
            if self.kind == "video":
                self._need_keyframe = not packet.is_keyframe
                self.source.request_keyframe()
                if self._need_keyframe:
                    self.dropped += 1
                    return
        self._queue.append(packet)
        self._wakeup.set()

    def source_ended(self) -> None:
        self._queue.append(None)
        self._wakeup.set()

    def park(self) -> None:
        """The publisher is gone (or being replaced): stop taking its packets but stay live,
        so the subscriber's connection waits for the same peer to publish again."""
        self.source.detach(self)
        self._queue.clear()
        self._need_keyframe = self.kind == "video"

    def rebind(self, source: TrackSource) -> None:
        """Follow a new source of the same kind and codec, starting at its next keyframe
        (its cached GOP at once); no renegotiation: the RTP sender is unchanged."""
        self.park()
        self.source = source
        self.resyncs += 1
        source.attach(self)

    async def recv(self) -> EncodedPacket:
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._wakeup.clear()
            await self._wakeup.wait()
        packet = self._queue.popleft()
        if packet is None:
            self.stop()
            raise MediaStreamError
        if self.first_packet_at is None:
            self.first_packet_at = time.monotonic()
        self.packets_out += 1
        return packet

    def stop(self) -> None:
        if self.readyState == "live":
            self.source.detach(self)
            self._wakeup.set()
        super().stop()
