"""VP8 -> H.264, once per track, for consumers that only take H.264 (FLV, HLS, RTMP).

Browsers may publish VP8; WeChat ``live-player`` and the FLV/HLS muxers need
H.264. A :class:`VideoTranscoder` is one more sink on the VP8
:class:`TrackSource` and owns a derived H.264 :class:`TrackSource`
(``.source``) that any number of consumers share: the transcode runs once per
published track, however many viewers. It is created only on demand (the
first FLV/HLS viewer of a VP8 publisher) and stopped with its consumer.

Decoding and encoding (libx264 ultrafast, zerolatency, constrained baseline,
SPS/PPS before every IDR) run in a worker thread fed by a bounded queue; the
event loop only hands packets over. A keyframe request on the H.264 source
makes the next encoded picture an IDR (no round trip to the publisher). When
the worker falls behind, queued frames are dropped up to the next VP8
keyframe.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import queue
import threading
from typing import Any, cast

import av

from .codecs import EncodedPacket, is_keyframe
from .forwarding import TrackSource
from .rtmp import QueueTrack

log = logging.getLogger(__name__)

QUEUE_FRAMES = 90


class VideoTranscoder:
    """Decode a VP8 source, encode H.264 once; ``source`` is the H.264 track source."""

    started_total = 0
    running = 0

    def __init__(
        self,
        vp8: TrackSource,
        *,
        bitrate: int = 1_200_000,
        gop_seconds: float = 2.0,
        label: str = "",
    ) -> None:
        self.vp8 = vp8
        self.label = label or vp8.label
        self.bitrate = bitrate
        self.gop_seconds = gop_seconds
        self._loop: asyncio.AbstractEventLoop | None = None
        self._out = QueueTrack("video")
        self.source = TrackSource(
            kind="video",
            codec_name="h264",
            track=self._out,
            request_keyframe=self._force_idr,
            label=f"{self.label}/h264",
        )
        self._queue: queue.Queue[tuple[bytes, int, bool] | None] = queue.Queue(maxsize=QUEUE_FRAMES)
        self._thread = threading.Thread(target=self._run, name=f"vp8-h264-{self.label}", daemon=True)
        self._idr = threading.Event()
        self._skip_to_key = True
        self._closed = False
        self.frames_in = 0
        self.frames_out = 0
        self.dropped = 0

    # --- lifecycle (event loop) ---

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        VideoTranscoder.started_total += 1
        VideoTranscoder.running += 1
        self._thread.start()
        self.source.start()
        self.vp8.attach(self)  # the cached GOP first: decoding starts on a keyframe

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        VideoTranscoder.running -= 1
        self.vp8.detach(self)
        self._put(None)

    # --- PacketSink on the VP8 source (event loop) ---

    def offer(self, packet: EncodedPacket, arrival: float) -> None:
        if self._closed:
            return
        key = bool(packet.is_keyframe)
        if self._skip_to_key and not key:
            return
        self._skip_to_key = False
        self.frames_in += 1
        try:
            self._queue.put_nowait((bytes(packet), int(packet.pts or 0), key))
        except queue.Full:
            self.dropped += 1
            self._skip_to_key = True  # resync on the next VP8 keyframe
            log.warning("vp8->h264 %s behind: dropping to the next keyframe", self.label)

    def source_ended(self) -> None:
        self.close()

    def _put(self, item: tuple[bytes, int, bool] | None) -> None:
        while True:
            try:
                self._queue.put_nowait(item)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    pass

    def _force_idr(self) -> bool:
        self._idr.set()
        return True

    # --- worker thread ---

    def _encoder(self, width: int, height: int) -> Any:
        ctx = cast(Any, av.CodecContext.create("libx264", "w"))
        ctx.width = width
        ctx.height = height
        ctx.pix_fmt = "yuv420p"
        ctx.time_base = fractions.Fraction(1, 90000)
        ctx.framerate = fractions.Fraction(30, 1)
        ctx.bit_rate = self.bitrate
        ctx.profile = "Baseline"
        keyint = max(1, round(30 * self.gop_seconds))
        ctx.options = {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "x264-params": f"keyint={keyint}:min-keyint={keyint}:scenecut=0:bframes=0:repeat-headers=1",
        }
        ctx.open()
        return ctx

    def _run(self) -> None:
        decoder = cast(Any, av.CodecContext.create("vp8", "r"))
        encoder: Any = None
        size: tuple[int, int] | None = None
        tb = fractions.Fraction(1, 90000)
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                data, pts, _ = item
                try:
                    frames = decoder.decode(av.Packet(data))
                except av.error.FFmpegError:
                    continue
                for frame in frames:
                    if encoder is None or size != (frame.width, frame.height):
                        encoder, size = self._encoder(frame.width, frame.height), (frame.width, frame.height)
                        self._idr.clear()
                    if frame.format.name != "yuv420p":
                        frame = frame.reformat(format="yuv420p")
                    frame.pts = pts
                    frame.time_base = tb
                    if self._idr.is_set():
                        self._idr.clear()
                        frame.pict_type = av.video.frame.PictureType.I
                    else:
                        frame.pict_type = av.video.frame.PictureType.NONE
                    for out in encoder.encode(frame):
                        body = bytes(out)
                        packet = av.Packet(body)
                        packet.pts = pts
                        packet.dts = pts
                        packet.time_base = tb
                        packet.is_keyframe = is_keyframe("h264", body)
                        self.frames_out += 1
                        self._deliver(packet)
        except Exception:
            log.exception("vp8->h264 %s failed", self.label)
        finally:
            self._deliver(None)

    def _deliver(self, packet: EncodedPacket | None) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._out.push, packet)
            except RuntimeError:  # loop closed meanwhile
                pass


# One transcoder per VP8 track, shared by its consumers (FLV/HLS, recorders).
_shared: dict[int, tuple[TrackSource, VideoTranscoder, list[int]]] = {}


def acquire_h264(vp8: TrackSource, *, label: str = "") -> VideoTranscoder:
    """The VP8 track's H.264 transcoder, started on first use; pair with :func:`release_h264`."""
    entry = _shared.get(id(vp8))
    if entry is None or entry[0] is not vp8 or entry[1].closed:
        transcoder = VideoTranscoder(vp8, label=label)
        transcoder.start()
        entry = _shared[id(vp8)] = (vp8, transcoder, [0])
    entry[2][0] += 1
    return entry[1]


def release_h264(transcoder: VideoTranscoder) -> None:
    """One consumer less; the last one stops the transcoder."""
    entry = _shared.get(id(transcoder.vp8))
    if entry is None or entry[1] is not transcoder:
        transcoder.close()
        return
    entry[2][0] -= 1
    if entry[2][0] <= 0:
        del _shared[id(transcoder.vp8)]
        transcoder.close()
