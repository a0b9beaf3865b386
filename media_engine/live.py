"""HTTP-FLV and HLS out of a room publisher, for WeChat ``live-player`` and ``<video>``.

:class:`FlvStream` is one more sink on a publisher's sources: H.264 passes
through (Annex-B -> AVCC, one AVCDecoderConfigurationRecord). An RTMP
publisher's own AAC (``publisher.aac_audio``) passes through too, placed on
the video's timeline by the pusher's timestamps; a WebRTC publisher's Opus is
transcoded to AAC once per track (in a worker thread). Both on one wall-clock
timeline like the recorder's. Bytes fan out to bounded per-viewer queues; a
new viewer gets the FLV header, both sequence headers and the tags since the
last keyframe (the GOP cache), so it starts on a keyframe at once. A viewer
that falls 8 MB behind is cut off, never the room.

:class:`HlsWriter` remuxes the FLV bytes with PyAV into classic HLS (1 s
segments) in its own thread: no second transcode, and PyAV never runs on the
event loop. It starts with the first HLS request for the room.

Everything starts on demand (first viewer), so a room without FLV/HLS viewers
costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av

from .audio import AacSource, AudioTranscoder
from .codecs import EncodedPacket
from .flv import (
    FLV_HEADER,
    TAG_AUDIO,
    TAG_VIDEO,
    AvcConfig,
    aac_tag_body,
    annexb_units,
    avcc,
    flv_tag,
    video_tag_body,
)
from .room import Publisher
from .video import VideoTranscoder, acquire_h264, release_h264

log = logging.getLogger(__name__)

VIEWER_QUEUE_BYTES = 8 * 1024 * 1024
_GOP_TAGS_MAX = 2000


class _Viewer:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.pending = 0
        self.closed = False

    def put(self, data: bytes | None) -> bool:
        if self.closed:
            return False
        if data is None:
            self.closed = True
        else:
            self.pending += len(data)
            if self.pending > VIEWER_QUEUE_BYTES:
                self.closed = True
                data = None
        self.queue.put_nowait(data)
        return not self.closed

    async def get(self) -> bytes | None:
        data = await self.queue.get()
        if data is not None:
            self.pending -= len(data)
        return data


class _Sink:
    """Feeds one kind of an FLV stream from a source (``PacketSink``)."""

    def __init__(self, on_packet: Callable[[EncodedPacket, float], None], on_end: Callable[[], None]) -> None:
        self.offer = on_packet
        self.source_ended = on_end


class FlvStream:
    """One publisher as an FLV byte stream, fanned out to viewers."""

    def __init__(self, room_id: str, publisher: Publisher) -> None:
        self.room_id = room_id
        self.publisher = publisher
        self._viewers: list[_Viewer] = []
        self._consumers: list[Any] = []  # byte callbacks (HLS)
        self._avc: AvcConfig | None = None
        self._video_seq: bytes | None = None
        self._audio_seq: bytes | None = None
        self._gop: list[bytes] = []
        self._t0: float | None = None
        self._anchors: dict[str, tuple[int, float, Any]] = {}
        self._last_ms: dict[str, int] = {}
        self._aac: AudioTranscoder | None = None  # Opus -> AAC (WebRTC publishers only)
        self._asc: bytes | None = None  # AudioSpecificConfig of the AAC passed through
        self.transcoder: VideoTranscoder | None = None  # VP8 publishers only
        self._sinks: list[tuple[str, Any]] = []
        self._live_kinds: set[str] = set()
        self.ended = asyncio.Event()
        self.tags_out = 0

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        audio = self.publisher.sources.get("audio")
        aac = self.publisher.aac_audio
        if aac is not None and aac.codec_name.lower() == "aac" and not aac.ended.is_set():
            # The ingest's own AAC: no transcode (and no Opus consumer for the RTMP publisher).
            self._set_asc(aac.extradata if isinstance(aac, AacSource) else None)
            sink = _Sink(self._on_aac_in, lambda: self._ended("audio"))
            self._sinks.append(("aac", sink))
            self._live_kinds.add("audio")
            aac.attach(sink)
        elif audio is not None and audio.codec_name.lower() == "opus":
            self._aac = AudioTranscoder("opus", "aac", self._on_aac, loop=loop, label=self.room_id)
            assert self._aac.extradata, "AAC encoder gave no AudioSpecificConfig"
            self._audio_seq = flv_tag(TAG_AUDIO, 0, aac_tag_body(0, self._aac.extradata))
            sink = _Sink(self._on_audio_in, lambda: self._ended("audio"))
            self._sinks.append(("audio", sink))
            self._live_kinds.add("audio")
            audio.attach(sink)
        video = self.publisher.sources.get("video")
        if video is not None and video.codec_name.lower() == "vp8":
            # FLV carries H.264 only: transcode once, shared by every viewer and the HLS remux.
            self.transcoder = acquire_h264(video, label=f"{self.room_id}/{self.publisher.peer_id}")
            video = self.transcoder.source
        if video is not None and video.codec_name.lower() == "h264":
            sink = _Sink(self._on_video, lambda: self._ended("video"))
            self._sinks.append(("video", sink))
            self._live_kinds.add("video")
            video.attach(sink)
        if not self._live_kinds:
            self.ended.set()

    def close(self) -> None:
        for kind, sink in self._sinks:
            source = self.publisher.aac_audio if kind == "aac" else self.publisher.sources.get(kind)
            if kind == "video" and self.transcoder is not None:
                source = self.transcoder.source
            if source is not None:
                source.detach(sink)
        self._sinks.clear()
        self._finish()

    def _finish(self) -> None:
        if self.transcoder is not None:
            release_h264(self.transcoder)
            self.transcoder = None
        if self._aac is not None:
            self._aac.close()
            self._aac = None
        for viewer in self._viewers:
            viewer.put(None)
        self._viewers.clear()
        for consumer in self._consumers:
            consumer(None)
        self._consumers.clear()
        self.ended.set()

    def _ended(self, kind: str) -> None:
        self._live_kinds.discard(kind)
        if not self._live_kinds:
            self._finish()

    # --- viewers ---

    def _prelude(self) -> bytes:
        parts = [FLV_HEADER]
        if self._video_seq is not None:
            parts.append(self._video_seq)
        if self._audio_seq is not None:
            parts.append(self._audio_seq)
        return b"".join(parts) + b"".join(self._gop)

    def add_viewer(self) -> _Viewer:
        viewer = _Viewer()
        if self.ended.is_set():
            viewer.put(None)
            return viewer
        if self._video_seq is not None or "video" not in self._live_kinds:
            viewer.put(self._prelude())
        else:
            viewer.put(FLV_HEADER)  # sequence headers follow with the first keyframe
        self._viewers.append(viewer)
        return viewer

    def remove_viewer(self, viewer: _Viewer) -> None:
        if viewer in self._viewers:
            self._viewers.remove(viewer)

    def add_consumer(self, consumer: Any) -> None:
        """A callable fed the same bytes as a viewer (None at the end), from the prelude on."""
        if self.ended.is_set():
            consumer(None)
            return
        if self._video_seq is not None:
            consumer(self._prelude())
        else:
            consumer(FLV_HEADER)
        self._consumers.append(consumer)

    @property
    def viewer_count(self) -> int:
        return len(self._viewers)

    # --- tags ---

    def _ms(self, kind: str, pts: int, tb: Any, arrival: float) -> int:
        if self._t0 is None:
            self._t0 = arrival
        anchor = self._anchors.get(kind)
        if anchor is None:
            anchor = self._anchors[kind] = (pts, arrival, tb)
        first_pts, first_arrival, _ = anchor
        ms = round(((first_arrival - self._t0) + float((pts - first_pts) * tb)) * 1000)
        last = self._last_ms.get(kind, -1)
        if ms < last:
            ms = last
        self._last_ms[kind] = ms
        return ms

    def _emit(self, tag: bytes, *, keyframe: bool = False, video: bool = False) -> None:
        if video and keyframe:
            self._gop = [tag]
        elif self._gop and len(self._gop) < _GOP_TAGS_MAX:
            self._gop.append(tag)
        elif self._gop:
            self._gop = []
        self.tags_out += 1
        for viewer in list(self._viewers):
            if not viewer.put(tag):
                self._viewers.remove(viewer)
                log.info("flv viewer of %s cut off: too far behind", self.room_id)
        for consumer in self._consumers:
            consumer(tag)

    def _on_video(self, packet: EncodedPacket, arrival: float) -> None:
        units = annexb_units(bytes(packet))
        if packet.is_keyframe:
            sps = tuple(u for u in units if u[0] & 0x1F == 7)
            pps = tuple(u for u in units if u[0] & 0x1F == 8)
            if sps and pps:
                config = AvcConfig(sps, pps)
                if config != self._avc:
                    first = self._avc is None
                    self._avc = config
                    self._video_seq = flv_tag(TAG_VIDEO, 0, video_tag_body(True, 0, config.record()))
                    if first:
                        prelude_rest = self._video_seq + (self._audio_seq or b"")
                        for viewer in self._viewers:
                            viewer.put(prelude_rest)
                        for consumer in self._consumers:
                            consumer(prelude_rest)
                    else:
                        self._emit(self._video_seq)
        if self._avc is None:
            return
        units = [u for u in units if u[0] & 0x1F not in (7, 8, 9)]
        if not units:
            return
        ms = self._ms("video", packet.pts or 0, packet.time_base, arrival)
        body = video_tag_body(bool(packet.is_keyframe), 1, avcc(units))
        self._emit(flv_tag(TAG_VIDEO, ms, body), keyframe=bool(packet.is_keyframe), video=True)

    def _on_audio_in(self, packet: EncodedPacket, arrival: float) -> None:
        if self._aac is None or self._avc is None:
            return  # audio starts with the video's first keyframe
        pts = round((packet.pts or 0) * packet.time_base * 48000)
        if "audio" not in self._anchors:
            self._ms("audio", pts, _TB48, arrival)
        self._aac.feed(bytes(packet), pts)

    def _on_aac(self, packet: EncodedPacket) -> None:
        if self.ended.is_set():
            return
        anchor = self._anchors.get("audio")
        assert anchor is not None
        ms = self._ms("audio", packet.pts or 0, _TB48, anchor[1])
        self._emit(flv_tag(TAG_AUDIO, ms, aac_tag_body(1, bytes(packet))))

    def _set_asc(self, asc: bytes | None) -> bool:
        """Take a (new) AudioSpecificConfig of the AAC passed through; True if it changed."""
        if not asc or asc == self._asc:
            return False
        self._asc = asc
        self._audio_seq = flv_tag(TAG_AUDIO, 0, aac_tag_body(0, asc))
        return True

    def _on_aac_in(self, packet: EncodedPacket, arrival: float) -> None:
        """One raw AAC frame of an RTMP publisher: an FLV tag as it is."""
        if self._avc is None or self.ended.is_set():
            return  # audio starts with the video's first keyframe
        source = self.publisher.aac_audio
        if self._set_asc(source.extradata if isinstance(source, AacSource) else None):
            self._emit(self._audio_seq or b"")
        if self._asc is None:
            return
        pts, tb = packet.pts or 0, packet.time_base
        video = self._anchors.get("video")
        if "audio" not in self._anchors and video is not None:
            # Audio and video carry the pusher's timestamps (one clock): place the audio
            # at the video's ms for the same timestamp, not by its own arrival, unless
            # the two disagree by more than _CLOCK_TOLERANCE_S (timelines shifted apart).
            video_pts, video_arrival, video_tb = video
            offset = float(pts * tb - video_pts * video_tb)
            if abs(offset - (arrival - video_arrival)) > _CLOCK_TOLERANCE_S:
                offset = arrival - video_arrival
            if offset < 0:
                return  # before the first video picture of this stream
            self._anchors["audio"] = (pts, video_arrival + offset, tb)
        ms = self._ms("audio", pts, tb, arrival)
        self._emit(flv_tag(TAG_AUDIO, ms, aac_tag_body(1, bytes(packet))))


_TB48 = fractions.Fraction(1, 48000)
# Pusher timestamps of audio vs video further apart than this from their arrival: not one clock.
_CLOCK_TOLERANCE_S = 1.0


class _ByteReader:
    """A blocking file-like object over a queue of byte chunks (for PyAV, in its thread)."""

    def __init__(self) -> None:
        self.queue: queue.Queue[bytes | None] = queue.Queue()
        self._buffer = b""
        self._eof = False

    def feed(self, data: bytes | None) -> None:
        self.queue.put(data)

    def read(self, size: int = -1) -> bytes:
        while not self._eof and (size < 0 or len(self._buffer) < size):
            chunk = self.queue.get()
            if chunk is None:
                self._eof = True
                break
            self._buffer += chunk
            if size >= 0 and self._buffer:
                break
        if size < 0:
            size = len(self._buffer)
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out


class HlsWriter:
    """Remuxes one :class:`FlvStream` into ``directory/index.m3u8`` + 1 s segments."""

    def __init__(self, stream: FlvStream, directory: Path, *, segment_seconds: float = 1.0) -> None:
        self.stream = stream
        self.directory = directory
        self.segment_seconds = segment_seconds
        self.playlist = directory / "index.m3u8"
        self._reader = _ByteReader()
        self._thread = threading.Thread(target=self._run, name=f"hls-{stream.room_id}", daemon=True)
        self.error: BaseException | None = None
        self.packets = 0

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        self.stream.add_consumer(self._reader.feed)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        output: Any = None
        try:
            with av.open(self._reader, "r", format="flv", options={"probesize": "32768"}) as source:
                output = av.open(
                    str(self.playlist),
                    "w",
                    format="hls",
                    options={
                        "hls_time": str(self.segment_seconds),
                        "hls_list_size": "0",
                        "hls_playlist_type": "event",
                        "hls_segment_filename": str(self.directory / "seg%05d.ts"),
                    },
                )
                streams = {}
                for s in source.streams:
                    if s.type in ("video", "audio"):
                        streams[s.index] = output.add_stream_from_template(s)
                for packet in source.demux():
                    if packet.dts is None or packet.stream.index not in streams:
                        continue
                    packet.stream = streams[packet.stream.index]
                    output.mux(packet)
                    self.packets += 1
        except Exception as exc:
            self.error = exc
            log.exception("hls writer %s failed", self.stream.room_id)
        finally:
            if output is not None:
                with contextlib.suppress(Exception):
                    output.close()


class LiveOutputs:
    """FLV streams and HLS writers of a media node, created on first demand."""

    def __init__(self, hls_root: Path) -> None:
        self.hls_root = hls_root
        self.flv: dict[tuple[str, str], FlvStream] = {}
        self.hls: dict[tuple[str, str], HlsWriter] = {}

    def flv_stream(self, room_id: str, publisher: Publisher) -> FlvStream:
        key = (room_id, publisher.peer_id)
        stream = self.flv.get(key)
        if stream is None or stream.ended.is_set() or stream.publisher is not publisher:
            stream = self.flv[key] = FlvStream(room_id, publisher)
            stream.start()
        return stream

    def hls_writer(self, room_id: str, publisher: Publisher) -> HlsWriter:
        key = (room_id, publisher.peer_id)
        writer = self.hls.get(key)
        stream = self.flv_stream(room_id, publisher)
        if writer is None or writer.stream is not stream:
            directory = self.hls_root / room_id / f"{publisher.peer_id}-{int(time.time())}"
            writer = self.hls[key] = HlsWriter(stream, directory)
            writer.start()
        return writer

    @property
    def transcoders(self) -> int:
        """VP8 -> H.264 transcoders running for these outputs (one per VP8 track with viewers)."""
        return len({id(s.transcoder) for s in self.flv.values() if s.transcoder is not None})

    def release_if_idle(self, room_id: str, publisher: Publisher) -> None:
        """The last FLV viewer left and no HLS writer uses the stream: stop it (and its transcoders)."""
        key = (room_id, publisher.peer_id)
        stream = self.flv.get(key)
        if stream is None or stream.viewer_count or key in self.hls:
            return
        del self.flv[key]
        stream.close()

    def close(self) -> None:
        for stream in self.flv.values():
            stream.close()
        self.flv.clear()
        self.hls.clear()
