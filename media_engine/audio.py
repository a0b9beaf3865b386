"""AAC <-> Opus, once per track, in a worker thread (never on the event loop).

WeChat pushes and plays AAC; WebRTC wants Opus. One :class:`AudioTranscoder`
per track decodes, resamples and re-encodes; its output packets are handed
back to the event loop with ``call_soon_threadsafe``.

When the source already is AAC (RTMP ingest), FLV/HLS take it as it is: an
:class:`AacSource` carries the raw frames and their AudioSpecificConfig, and
the AAC -> Opus transcode runs only while an Opus consumer (WebRTC
subscriber, recorder) is attached to the Opus :class:`DemandSource`.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar, cast

import av
from aiortc.mediastreams import MediaStreamTrack

from .codecs import EncodedPacket
from .forwarding import PacketSink, TrackSource

log = logging.getLogger(__name__)

_TARGETS: dict[str, tuple[str, int]] = {"opus": ("libopus", 960), "aac": ("aac", 1024)}


class AudioTranscoder:
    """Decode ``src_codec`` packets, re-encode as ``dst`` ("opus" or "aac") at 48 kHz stereo.

    ``on_packet`` runs on ``loop`` with each encoded packet (pts in 1/48000,
    continuing from the first input pts). ``extradata`` of the encoder (the
    AudioSpecificConfig for AAC) is available once the first packet is out.
    ``started`` / ``running`` count transcoders by direction (``"aac->opus"``).
    """

    started: ClassVar[dict[str, int]] = {}
    running: ClassVar[dict[str, int]] = {}

    def __init__(
        self,
        src_codec: str,
        dst: str,
        on_packet: Callable[[EncodedPacket], None],
        *,
        loop: asyncio.AbstractEventLoop,
        src_extradata: bytes | None = None,
        label: str = "",
    ) -> None:
        self.dst = dst
        self.direction = f"{src_codec}->{dst}"
        self.label = label
        self._loop = loop
        self._on_packet = on_packet
        self._decoder = cast(Any, av.CodecContext.create(src_codec, "r"))
        if src_extradata:
            self._decoder.extradata = src_extradata
        encoder_name, frame_size = _TARGETS[dst]
        self._encoder = cast(Any, av.CodecContext.create(encoder_name, "w"))
        self._encoder.sample_rate = 48000
        self._encoder.layout = "stereo"
        self._encoder.format = "s16" if dst == "opus" else "fltp"
        self._encoder.time_base = fractions.Fraction(1, 48000)
        if dst == "aac":
            self._encoder.bit_rate = 64000
        self._encoder.open()
        self.extradata: bytes | None = bytes(self._encoder.extradata) if self._encoder.extradata else None
        self._resampler = av.AudioResampler(
            format=self._encoder.format.name, layout="stereo", rate=48000, frame_size=frame_size
        )
        self._frame_size = frame_size
        self._next_pts: int | None = None
        self._closed = False
        self._queue: queue.Queue[tuple[bytes, int] | None] = queue.Queue(maxsize=500)
        self._thread = threading.Thread(target=self._run, name=f"audio-{dst}-{label}", daemon=True)
        self.packets_in = 0
        self.packets_out = 0
        AudioTranscoder.started[self.direction] = AudioTranscoder.started.get(self.direction, 0) + 1
        AudioTranscoder.running[self.direction] = AudioTranscoder.running.get(self.direction, 0) + 1
        self._thread.start()

    def feed(self, data: bytes, pts_48k: int) -> None:
        """Queue one input packet (pts in 1/48000); dropped when the worker is 10 s behind."""
        self.packets_in += 1
        try:
            self._queue.put_nowait((data, pts_48k))
        except queue.Full:
            log.warning("audio transcoder %s behind: packet dropped", self.label)

    def close(self) -> None:
        self._closed = True
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass  # the worker sees _closed at its next packet

    def _run(self) -> None:
        tb = fractions.Fraction(1, 48000)
        try:
            while True:
                item = self._queue.get()
                if item is None or self._closed:
                    return
                data, pts = item
                if self._next_pts is None:
                    self._next_pts = pts
                try:
                    frames = self._decoder.decode(av.Packet(data))
                except av.error.FFmpegError:
                    continue
                for frame in frames:
                    frame.pts = None
                    for chunk in self._resampler.resample(frame):
                        chunk.pts = None
                        for out in self._encoder.encode(chunk):
                            packet = av.Packet(bytes(out))
                            packet.pts = self._next_pts
                            packet.dts = self._next_pts
                            packet.time_base = tb
                            packet.is_keyframe = True
                            self._next_pts += self._frame_size
                            self.packets_out += 1
                            self._loop.call_soon_threadsafe(self._on_packet, packet)
        except Exception:
            log.exception("audio transcoder %s failed", self.label)
        finally:
            AudioTranscoder.running[self.direction] -= 1


class AacSource(TrackSource):
    """Raw AAC frames of an ingest (RTMP), for FLV/HLS without a transcode.

    ``extradata`` is the AudioSpecificConfig of the last AAC sequence header
    (None until it arrives; consumers compare it per packet to follow a
    change). Packet pts are in the ``time_base`` of the packets (1/1000 for
    RTMP: the pusher's timestamps, the same clock as its video).
    """

    def __init__(self, *, track: MediaStreamTrack, extradata: bytes | None = None, label: str = "") -> None:
        super().__init__(kind="audio", codec_name="aac", track=track, request_keyframe=lambda: True, label=label)
        self.extradata = extradata


class DemandSource(TrackSource):
    """A source fed only on demand: ``on_demand(True)`` when its first sink attaches,
    ``on_demand(False)`` when the last one detaches, and once more when the source ends."""

    def __init__(self, *, on_demand: Callable[[bool], None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._on_demand = on_demand
        self._wanted = False

    def _update_demand(self) -> None:
        wanted = self.sink_count > 0 and not self.ended.is_set()
        if wanted != self._wanted:
            self._wanted = wanted
            self._on_demand(wanted)

    @property
    def wanted(self) -> bool:
        return self._wanted

    def heard(self) -> None:
        """Input arrived while nothing is produced (no demand): the track is alive, not
        silent (``last_packet_at`` is what the room's watchdog reads)."""
        self.last_packet_at = time.monotonic()

    def attach(self, sink: PacketSink, *, replay_gop: bool = True) -> None:
        super().attach(sink, replay_gop=replay_gop)
        self._update_demand()

    def detach(self, sink: PacketSink) -> None:
        super().detach(sink)
        self._update_demand()

    def _end(self) -> None:
        ending = not self.ended.is_set()
        super()._end()
        if ending:
            self._wanted = False
            self._on_demand(False)
