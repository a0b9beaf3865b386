"""Encoded receive path for aiortc receivers.

Stock aiortc runs ``decoder_worker`` in a thread per receiver and hands decoded
frames to the track. A receiver marked with :func:`use_encoded` runs a worker
that wraps each reassembled frame as an ``av.Packet`` instead (pts = RTP
timestamp, time_base = 1/clock rate, ``is_keyframe`` set), so its track yields
encoded packets that an ``RTCRtpSender`` only packetizes. Unmarked receivers
keep decoding: the choice is per receiver.

Encoded receivers also get a frame assembler that releases a video frame on its
RTP marker bit (stock waits for the first packet of the *next* frame, one frame
interval later) and audio packets as they arrive (stock prefetches four).
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import queue
import threading
from typing import Any

import aiortc.rtcrtpreceiver as _rtcrtpreceiver
import av
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtp import RtpPacket
from aiortc.utils import uint16_gt

from .codecs import is_keyframe

log = logging.getLogger(__name__)

_ENCODED_FLAG = "_media_engine_encoded"
_stock_decoder_worker = _rtcrtpreceiver.decoder_worker
_installed = False
_pending: set[asyncio.Future[None]] = set()


def _encoded_worker(loop: asyncio.AbstractEventLoop, input_q: queue.Queue[Any], output_q: asyncio.Queue[Any]) -> None:
    time_bases: dict[int, fractions.Fraction] = {}
    while True:
        task = input_q.get()
        if task is None:
            loop.call_soon_threadsafe(output_q.put_nowait, None)
            return
        codec, frame = task
        packet = av.Packet(frame.data)
        packet.pts = frame.timestamp
        packet.dts = frame.timestamp
        tb = time_bases.get(codec.clockRate)
        if tb is None:
            tb = time_bases[codec.clockRate] = fractions.Fraction(1, codec.clockRate)
        packet.time_base = tb
        packet.is_keyframe = is_keyframe(codec.name, frame.data)
        loop.call_soon_threadsafe(output_q.put_nowait, packet)


def _dispatching_worker(
    loop: asyncio.AbstractEventLoop,
    input_q: queue.Queue[Any],
    output_q: asyncio.Queue[Any],
    decode_error: threading.Event,
) -> None:
    if getattr(output_q, _ENCODED_FLAG, False):
        _encoded_worker(loop, input_q, output_q)
    else:
        _stock_decoder_worker(loop, input_q, output_q, decode_error)


def install() -> None:
    """Route aiortc's receive worker through the per-receiver dispatcher (idempotent)."""
    global _installed
    if not _installed:
        _rtcrtpreceiver.decoder_worker = _dispatching_worker
        _installed = True


class MarkerJitterBuffer(JitterBuffer):
    """Video: release a frame as soon as its marker-bit packet completes it."""

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        packets: list[RtpPacket] = []
        timestamp: int | None = None
        origin = self._origin
        assert origin is not None
        for count in range(self.capacity):
            packet = self._packets[(origin + count) % self._capacity]
            if packet is None:
                return None
            if timestamp is None:
                timestamp = packet.timestamp
            elif packet.timestamp != timestamp:
                # The marker packet was lost for good: release what we have, like stock.
                self.remove(count)
                return JitterFrame(data=b"".join(p._data for p in packets), timestamp=timestamp)  # type: ignore[attr-defined]
            packets.append(packet)
            if packet.marker:
                self.remove(count + 1)
                return JitterFrame(data=b"".join(p._data for p in packets), timestamp=timestamp)  # type: ignore[attr-defined]
        return None


class PassThroughAudioBuffer(JitterBuffer):
    """Audio: every RTP packet is a whole Opus frame; pass it on unless it is late."""

    def __init__(self) -> None:
        super().__init__(capacity=16)
        self._last: int | None = None

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        if self._last is not None and not uint16_gt(packet.sequence_number, self._last):
            return False, None
        self._last = packet.sequence_number
        return False, JitterFrame(data=packet._data, timestamp=packet.timestamp)  # type: ignore[attr-defined]


def use_encoded(receiver: RTCRtpReceiver) -> MediaStreamTrack:
    """Make ``receiver`` deliver encoded ``av.Packet`` objects; returns its track.

    Call after ``setRemoteDescription`` created the remote track and before
    the connection starts (``setLocalDescription`` of the answer).
    """
    install()
    track = receiver.track
    if track is None:
        raise ValueError("receiver has no remote track yet")
    setattr(track._queue, _ENCODED_FLAG, True)  # type: ignore[attr-defined]
    buffer: JitterBuffer = (
        PassThroughAudioBuffer() if track.kind == "audio" else MarkerJitterBuffer(capacity=512, is_video=True)
    )
    receiver._RTCRtpReceiver__jitter_buffer = buffer  # type: ignore[attr-defined]
    return track


def media_ssrc(receiver: RTCRtpReceiver) -> int | None:
    """The SSRC carrying the media (not RTX): where PLI must go.

    Chromium ignores a PLI addressed to its RTX SSRC, and the first entry of
    ``getSynchronizationSources()`` may be exactly that.
    """
    rtx_map: dict[int, int] = getattr(receiver, "_RTCRtpReceiver__rtx_ssrc", {})
    for ssrc in rtx_map.values():
        return ssrc
    streams: dict[int, Any] = getattr(receiver, "_RTCRtpReceiver__remote_streams", {})
    for ssrc in streams:
        if ssrc not in rtx_map:
            return ssrc
    return None


def send_pli(receiver: RTCRtpReceiver) -> bool:
    """Ask the remote publisher for a keyframe; False when its SSRC is not known yet."""
    ssrc = media_ssrc(receiver)
    if ssrc is None:
        return False
    task = asyncio.ensure_future(receiver._send_rtcp_pli(ssrc))
    _pending.add(task)
    task.add_done_callback(_pending.discard)
    return True


__all__ = ["MarkerJitterBuffer", "PassThroughAudioBuffer", "install", "media_ssrc", "send_pli", "use_encoded"]
