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
makes the next encoded picture an IDR (no round trip to the publisher): the
first picture that arrived after the request, never one queued before it.
When the worker falls behind, queued frames are dropped up to the next VP8
keyframe.

Timestamps (ADR 0023): an H.264 packet keeps its VP8 input's pts (rescaled
from the input's time base to 1/90000) and its input's *arrival* time, so the
recorder and the FLV muxer, which anchor tracks at arrival and advance them by
pts, put transcoded video on the same timeline as the untranscoded audio. The
burst through the cached VP8 GOP when a transcoder starts keeps the GOP's
original arrivals (before, it came out "now" with pts from seconds ago, which
stretched the video track by the GOP's length).
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, cast

import av

from .codecs import EncodedPacket, is_keyframe
from .forwarding import TrackSource
from .rtmp import QueueTrack

log = logging.getLogger(__name__)

QUEUE_FRAMES = 90
_TB = fractions.Fraction(1, 90000)
_DEFAULT_FPS = 30
_RTP_HALF = 1 << 31  # half the 32-bit RTP timestamp range
_Item = tuple[bytes, int, fractions.Fraction, float]  # data, pts, time base, arrival


class TranscodedSource(TrackSource):
    """The H.264 :class:`TrackSource` of a transcoder: its packets keep their input's arrival time.

    A plain source stamps each packet with the time it reads it; this one is
    fed ``(packet, arrival)`` by the transcoder (on the event loop) and
    dispatches with that arrival, so the transcode's latency and its bursts
    do not move the video against the audio.
    """

    def __init__(self, *, request_keyframe: Callable[[], bool], label: str) -> None:
        # The track is never read (``_run`` reads the feed below); it is what the base class expects.
        super().__init__(
            kind="video", codec_name="h264", track=QueueTrack("video"), request_keyframe=request_keyframe, label=label
        )
        self._feed: asyncio.Queue[tuple[EncodedPacket, float] | None] = asyncio.Queue()

    def push(self, item: tuple[EncodedPacket, float] | None) -> None:
        self._feed.put_nowait(item)

    async def _run(self) -> None:
        try:
            while (item := await self._feed.get()) is not None:
                self._dispatch(*item)
        finally:
            self._end()


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
        self.source = TranscodedSource(request_keyframe=self._force_idr, label=f"{self.label}/h264")
        self._queue: queue.Queue[_Item | None] = queue.Queue(maxsize=QUEUE_FRAMES)
        self._thread = threading.Thread(target=self._run, name=f"vp8-h264-{self.label}", daemon=True)
        # A pending IDR request: the monotonic time it was made (the first picture
        # that arrived at or after it is encoded as an IDR), or None.
        self._idr_lock = threading.Lock()
        self._idr_after: float | None = None
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
        time_base = packet.time_base or _TB
        try:
            self._queue.put_nowait((bytes(packet), int(packet.pts or 0), time_base, arrival))
        except queue.Full:
            self.dropped += 1
            self._skip_to_key = True  # resync on the next VP8 keyframe
            log.warning("vp8->h264 %s behind: dropping to the next keyframe", self.label)

    def source_ended(self) -> None:
        self.close()

    def _put(self, item: _Item | None) -> None:
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
        with self._idr_lock:
            if self._idr_after is None:
                self._idr_after = time.monotonic()
        return True

    def _take_idr(self, arrival: float, *, fresh_encoder: bool) -> bool:
        """Whether the picture that arrived at ``arrival`` answers the pending IDR request.

        A fresh encoder's first picture is an IDR anyway: it answers a request
        made before that picture arrived (and the request is consumed).
        """
        with self._idr_lock:
            if self._idr_after is None or arrival < self._idr_after:
                return False
            self._idr_after = None
            return not fresh_encoder

    # --- worker thread ---

    def _encoder(self, width: int, height: int) -> Any:
        ctx = cast(Any, av.CodecContext.create("libx264", "w"))
        ctx.width = width
        ctx.height = height
        ctx.pix_fmt = "yuv420p"
        ctx.time_base = _TB
        ctx.framerate = fractions.Fraction(_DEFAULT_FPS, 1)
        ctx.bit_rate = self.bitrate
        ctx.profile = "Baseline"
        keyint = max(1, round(_DEFAULT_FPS * self.gop_seconds))
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
        arrivals: dict[int, float] = {}  # encoder pts -> arrival of its input picture
        last_pts: int | None = None
        last_in: int | None = None
        unwrap = 0
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                data, in_pts, in_tb, arrival = item
                # A 32-bit RTP timestamp that wrapped continues past 2**32.
                if last_in is not None and in_pts - last_in < -_RTP_HALF:
                    unwrap += 2 * _RTP_HALF
                last_in = in_pts
                # The source's clock, in the encoder's time base (1/90000).
                pts = round((in_pts + unwrap) * in_tb / _TB)
                if last_pts is not None and pts <= last_pts:
                    pts = last_pts + 1  # x264 needs increasing pts (a repeated timestamp)
                last_pts = pts
                packet_in = av.Packet(data)
                packet_in.pts = packet_in.dts = pts
                packet_in.time_base = _TB
                try:
                    frames = decoder.decode(packet_in)
                except av.error.FFmpegError:
                    continue
                for frame in frames:
                    fresh = encoder is None or size != (frame.width, frame.height)
                    if fresh:
                        encoder, size = self._encoder(frame.width, frame.height), (frame.width, frame.height)
                        arrivals.clear()
                    if frame.format.name != "yuv420p":
                        frame = frame.reformat(format="yuv420p")
                    # One picture per VP8 frame: its pts is that frame's.
                    frame.pts = pts
                    frame.time_base = _TB
                    if self._take_idr(arrival, fresh_encoder=fresh):
                        frame.pict_type = av.video.frame.PictureType.I
                    else:
                        frame.pict_type = av.video.frame.PictureType.NONE
                    arrivals[pts] = arrival
                    for out in encoder.encode(frame):
                        self._emit(out, arrivals)
        except Exception:
            log.exception("vp8->h264 %s failed", self.label)
        finally:
            self._deliver(None)

    def _emit(self, out: Any, arrivals: dict[int, float]) -> None:
        """Hand one encoded H.264 packet to the loop with its input's pts and arrival."""
        pts = out.pts
        if pts is None:  # never with x264 (bframes=0, zerolatency): the last input's pts
            pts = max(arrivals) if arrivals else 0
        arrival = arrivals.pop(pts, None)
        if arrival is None:
            arrival = time.monotonic()
        for stale in [p for p in arrivals if p < pts]:
            del arrivals[stale]
        body = bytes(out)
        packet = av.Packet(body)
        packet.pts = pts
        packet.dts = pts
        packet.time_base = _TB
        packet.is_keyframe = is_keyframe("h264", body)
        self.frames_out += 1
        self._deliver((packet, arrival))

    def _deliver(self, item: tuple[EncodedPacket, float] | None) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self.source.push, item)
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
