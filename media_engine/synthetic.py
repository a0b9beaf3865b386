"""Synthetic encoded media for tests, load generators and demos.

Encodes a short clip once with PyAV (lavfi ``testsrc2`` / ``sine``) and replays
its packets in real time as an aiortc track yielding ``av.Packet``, so a
publisher costs no encoding at run time. A keyframe request (PLI reaching the
sender) makes the track jump to its next keyframe, as a real encoder would
produce one.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import av
from aiortc import RTCRtpSender
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av.video.codeccontext import VideoCodecContext

from .codecs import EncodedPacket

VIDEO_CLOCK = 90000
AUDIO_CLOCK = 48000


@dataclass(frozen=True)
class Sample:
    data: bytes
    keyframe: bool


@dataclass(frozen=True)
class Clip:
    kind: str
    codec: str
    samples: tuple[Sample, ...]
    clock_rate: int
    ticks_per_sample: int

    @property
    def interval(self) -> float:
        return self.ticks_per_sample / self.clock_rate


def _encode_video(
    codec: str,
    name: str,
    *,
    width: int,
    height: int,
    fps: int,
    seconds: float,
    bitrate: int,
    gop_frames: int,
    noise: int,
    options: dict[str, str],
    force_keyframes: bool,
) -> Clip:
    """Encode ``testsrc2`` (optionally noisy) with ``codec``; shared by the H.264 and VP8 clips."""
    graph = f"testsrc2=size={width}x{height}:rate={fps}"
    if noise:
        graph += f",noise=alls={noise}:allf=t"
    source = av.open(graph, format="lavfi")
    ctx = cast(VideoCodecContext, av.CodecContext.create(codec, "w"))
    ctx.width = width
    ctx.height = height
    ctx.pix_fmt = "yuv420p"
    ctx.time_base = fractions.Fraction(1, fps)
    ctx.framerate = fractions.Fraction(fps, 1)
    ctx.bit_rate = bitrate
    if codec == "libx264":
        ctx.profile = "Baseline"
    else:
        ctx.gop_size = gop_frames
    ctx.options = options
    total = int(seconds * fps)
    samples: list[Sample] = []
    try:
        for index, frame in enumerate(source.decode(video=0)):
            if index >= total:
                break
            yuv = frame.reformat(format="yuv420p")
            yuv.pts = index
            yuv.time_base = ctx.time_base
            key = force_keyframes and index % gop_frames == 0
            yuv.pict_type = av.video.frame.PictureType.I if key else av.video.frame.PictureType.NONE
            for packet in ctx.encode(yuv):
                samples.append(Sample(bytes(packet), bool(packet.is_keyframe)))
        for packet in ctx.encode(None):
            samples.append(Sample(bytes(packet), bool(packet.is_keyframe)))
    finally:
        source.close()
    return Clip("video", name, tuple(samples), VIDEO_CLOCK, VIDEO_CLOCK // fps)


def encode_h264(
    *,
    width: int = 320,
    height: int = 240,
    fps: int = 30,
    seconds: float = 2.0,
    bitrate: int = 500_000,
    gop_frames: int = 30,
    noise: int = 0,
) -> Clip:
    """H.264 constrained baseline, no B-frames, SPS/PPS before every IDR."""
    options = {
        "preset": "veryfast",
        "tune": "zerolatency",
        "x264-params": (
            f"keyint={gop_frames}:min-keyint={gop_frames}:scenecut=0:bframes=0:repeat-headers=1:"
            f"vbv-maxrate={bitrate // 1000}:vbv-bufsize={bitrate // 1000}"
        ),
    }
    return _encode_video(
        "libx264", "H264", width=width, height=height, fps=fps, seconds=seconds, bitrate=bitrate,
        gop_frames=gop_frames, noise=noise, options=options, force_keyframes=False,
    )  # fmt: skip


def encode_vp8(
    *,
    width: int = 320,
    height: int = 240,
    fps: int = 30,
    seconds: float = 2.0,
    bitrate: int = 500_000,
    gop_frames: int = 30,
    noise: int = 0,
) -> Clip:
    """VP8 (libvpx, realtime), a keyframe every ``gop_frames``: what a browser may publish."""
    options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0", "keyint_min": str(gop_frames)}
    return _encode_video(
        "libvpx", "VP8", width=width, height=height, fps=fps, seconds=seconds, bitrate=bitrate,
        gop_frames=gop_frames, noise=noise, options=options, force_keyframes=True,
    )  # fmt: skip


def encode_opus(*, seconds: float = 2.0, frequency: int = 440) -> Clip:
    """Opus 48 kHz stereo, 20 ms frames, of a sine tone."""
    source = av.open(f"sine=frequency={frequency}:sample_rate=48000", format="lavfi")
    ctx = av.CodecContext.create("libopus", "w")
    ctx.sample_rate = 48000
    ctx.layout = "stereo"
    ctx.format = "s16"
    ctx.time_base = fractions.Fraction(1, 48000)
    resampler = av.AudioResampler(format="s16", layout="stereo", rate=48000, frame_size=960)
    total = int(seconds * 50)
    samples: list[Sample] = []
    try:
        for frame in source.decode(audio=0):
            for chunk in resampler.resample(frame):
                for packet in ctx.encode(chunk):
                    samples.append(Sample(bytes(packet), True))
            if len(samples) >= total:
                break
    finally:
        source.close()
    return Clip("audio", "opus", tuple(samples[:total]), AUDIO_CLOCK, 960)


class ClipTrack(MediaStreamTrack):
    """Plays a :class:`Clip` in a loop, in real time, as encoded packets.

    ``stamp`` may rewrite each sample's payload (the benchmark appends a send
    time to every video frame).
    """

    def __init__(self, clip: Clip, *, stamp: Callable[[bytes, int], bytes] | None = None) -> None:
        super().__init__()
        self.kind = clip.kind
        self.clip = clip
        self._stamp = stamp
        self._index = 0
        self._count = 0
        self._start: float | None = None
        self._time_base = fractions.Fraction(1, clip.clock_rate)
        self.keyframe_requests = 0
        self._jump = False

    def request_keyframe(self) -> None:
        self.keyframe_requests += 1
        self._jump = True

    def bind_sender(self, sender: RTCRtpSender) -> None:
        """Let PLI/FIR reaching ``sender`` produce a keyframe from this track."""
        sender._send_keyframe = self.request_keyframe  # type: ignore[method-assign]

    async def recv(self) -> EncodedPacket:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        due = self._start + self._count * self.clip.interval
        if due > now:
            await asyncio.sleep(due - now)
        samples = self.clip.samples
        if self._jump:
            self._jump = False
            if not samples[self._index % len(samples)].keyframe:
                step = 1
                while not samples[(self._index + step) % len(samples)].keyframe and step < len(samples):
                    step += 1
                self._index += step
        sample = samples[self._index % len(samples)]
        self._index += 1
        data = sample.data if self._stamp is None else self._stamp(sample.data, self._count)
        packet = av.Packet(data)
        packet.pts = self._count * self.clip.ticks_per_sample
        packet.dts = packet.pts
        packet.time_base = self._time_base
        packet.is_keyframe = sample.keyframe
        self._count += 1
        return packet
