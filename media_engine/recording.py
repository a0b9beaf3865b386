"""Per-room recording to fragmented MP4, without transcoding.

The recorder is one more sink on a publisher's sources: it gets the forwarded
``av.Packet`` objects and a writer thread muxes them (PyAV holds the GIL while
opening and closing a container, so never on the event loop). Fragments are
cut at video keyframes with ``empty_moov`` and ``default_base_moof``, so a file
cut short by a crash still plays up to its last complete fragment.

Exact start (ADR 0023): the file holds what was published after the start,
nothing from before. The recorder attaches without the GOP cache's replay and
asks the source for a keyframe (a WebRTC publisher answers the PLI at once;
an RTMP publisher cannot, so its next keyframe starts the file); packets that
arrived before the start are dropped. The first video keyframe at or after the
start is the file's 0; audio that arrived before it is dropped.

A/V sync: every track is anchored at the arrival time of its first packet and
advances with its own RTP clock, so the tracks share one wall-clock timeline
starting at the first video keyframe. The manifest records how long after the
start request that keyframe arrived (``first_frame_after_start_seconds``).

At the end a manifest (JSON) records the tracks, duration, size and SHA-256 of
the file, sealed with an HMAC-SHA256 over its canonical form.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import fractions
import hashlib
import hmac
import json
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av

from .codecs import EncodedPacket
from .forwarding import TrackSource
from .grants import canonical_json as canonical_json  # one canonical JSON in the engine
from .grants import mac

log = logging.getLogger(__name__)


class EmptyRecording(Exception):
    """The recorder was stopped before any packet reached it: nothing was written."""

    code = "media.recording_empty"


MP4_OPTIONS = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "flush_packets": "1"}
MANIFEST_VERSION = 1
_VIDEO_TB = fractions.Fraction(1, 90000)
_AUDIO_TB = fractions.Fraction(1, 48000)
# Audio that arrives before the first video keyframe is held this long at most.
_MAX_PENDING = 500
_RTP_HALF = 1 << 31  # half the 32-bit RTP timestamp range


def seal_manifest(manifest: dict[str, Any], key: bytes) -> dict[str, Any]:
    """Return ``manifest`` with its ``hmac`` field set (hex, over the canonical JSON
    of every other field); ``key`` is the hub's derived manifest key."""
    body = {k: v for k, v in manifest.items() if k != "hmac"}
    return {**body, "hmac": mac(key, canonical_json(body)).hex()}


def file_digest(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def verify_manifest(manifest: dict[str, Any], key: bytes, media_file: Path | None = None) -> bool:
    """True when the HMAC matches and, given the media file, its size and SHA-256 too."""
    claimed = manifest.get("hmac")
    if not isinstance(claimed, str):
        return False
    expected = seal_manifest(manifest, key)["hmac"]
    if not hmac.compare_digest(claimed, expected):
        return False
    if media_file is not None:
        size, sha = file_digest(media_file)
        return size == manifest.get("size") and hmac.compare_digest(sha, str(manifest.get("sha256")))
    return True


def probe(path: Path) -> dict[str, Any]:
    """Duration and tracks of a recording as PyAV reads it (also for cut files)."""
    with av.open(str(path)) as container:
        tracks = []
        end = 0.0
        for stream in container.streams:
            tracks.append({"kind": stream.type, "codec": stream.codec_context.name})
        for packet in container.demux():
            if packet.pts is not None and packet.time_base is not None:
                end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
        return {"tracks": tracks, "duration_seconds": round(end, 3)}


def recover_manifest(path: Path, key: bytes, **meta: Any) -> dict[str, Any]:
    """A sealed manifest for a file whose recorder died before writing one."""
    size, sha = file_digest(path)
    info = probe(path)
    manifest = {
        "version": MANIFEST_VERSION,
        "file": path.name,
        "format": "mp4-fragmented",
        "recovered": True,
        "size": size,
        "sha256": sha,
        **info,
        **meta,
    }
    return seal_manifest(manifest, key)


@dataclass
class _Track:
    kind: str
    codec: str
    time_base: fractions.Fraction
    anchor: tuple[int, float] | None = None
    last_in: int | None = None  # the source's last pts (to unwrap 32-bit RTP timestamps)
    unwrap: int = 0
    last_pts: int = -1
    packets: int = 0
    first_pts: int | None = None
    stream: Any = None


class _Sink:
    """Feeds one source's packets into the recorder's queue (never blocks the loop).

    Packets that arrived before ``since`` (the start request) are dropped, and
    video starts on the first keyframe after that: a transcoder's output keeps
    its input's arrival, so its burst through a cached GOP is dropped too.
    """

    def __init__(self, recorder: Recorder, kind: str, since: float) -> None:
        self._recorder = recorder
        self._kind = kind
        self._since = since
        self._started = kind != "video"

    def offer(self, packet: EncodedPacket, arrival: float) -> None:
        if arrival < self._since:
            return
        if not self._started:
            if not packet.is_keyframe:
                return
            self._started = True
        self._recorder._queue.put(
            (self._kind, bytes(packet), packet.pts, packet.time_base, arrival, packet.is_keyframe)
        )

    def source_ended(self) -> None:
        self._recorder._queue.put((self._kind, None, None, None, time.monotonic(), False))


@dataclass
class Recorder:
    """Records one publisher's tracks of a room into ``path`` (fragmented MP4)."""

    path: Path
    key: bytes
    room_id: str
    sources: dict[str, TrackSource]
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._queue: queue.Queue[tuple[str, bytes | None, int | None, Any, float, bool] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._sinks: dict[str, _Sink] = {}
        self._tracks: dict[str, _Track] = {}
        self._error: BaseException | None = None
        self.started_at: datetime.datetime | None = None
        self._start_request: float | None = None  # monotonic time of start()
        self._first_frame: float | None = None  # arrival of the file's first frame (its 0)
        self.manifest: dict[str, Any] | None = None

    def start(self) -> None:
        """Attach to the sources and start writing from the first keyframe at or after now.

        No GOP replay (it would put the cached pre-roll before the start): the
        video source is asked for a keyframe instead.
        """
        if self._thread is not None:
            raise RuntimeError("recorder already started")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.started_at = datetime.datetime.now(datetime.UTC)
        self._start_request = time.monotonic()
        for kind in ("video", "audio"):
            source = self.sources.get(kind)
            if source is None:
                continue
            self._tracks[kind] = _Track(kind, source.codec_name.lower(), _VIDEO_TB if kind == "video" else _AUDIO_TB)
        self._thread = threading.Thread(target=self._run, name=f"recorder-{self.room_id}", daemon=True)
        self._thread.start()
        for kind in ("video", "audio"):
            source = self.sources.get(kind)
            if source is not None:
                sink = self._sinks[kind] = _Sink(self, kind, self._start_request)
                # Without the replay, attaching a video sink requests a keyframe.
                source.attach(sink, replay_gop=False)
        log.info("recording room %s to %s", self.room_id, self.path)

    async def stop(self) -> dict[str, Any]:
        """Detach from every source at once, then finish the file in a thread.

        Detaching happens here, on the event loop that feeds the sinks, in one
        step: done from a worker thread, a thread preempted between the video
        and the audio detach let one track run on past the other (the tails
        drifted apart under CPU load), and the sources' sink lists were
        mutated while the loop iterated them.
        """
        self.detach()
        return await asyncio.to_thread(self.finish_blocking)

    def detach(self) -> None:
        """Stop taking packets from the sources (call on the sources' event loop)."""
        for kind, sink in self._sinks.items():
            self.sources[kind].detach(sink)
        self._sinks.clear()

    def finish_blocking(self) -> dict[str, Any]:
        """Finish the file and write the sealed manifest (blocking: run in a thread, after ``detach``)."""
        if self._sinks:
            raise RuntimeError("detach() the recorder on the event loop before finishing it")
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(30)
        if self._error is not None:
            raise RuntimeError("recording failed") from self._error
        if not self.path.exists():
            # Not one packet arrived (the publisher left without saying so, say): no file, no manifest.
            raise EmptyRecording(self.room_id)
        size, sha = file_digest(self.path)
        tracks = [{"kind": t.kind, "codec": t.codec, "packets": t.packets} for t in self._tracks.values() if t.packets]
        manifest = {
            "version": MANIFEST_VERSION,
            "room": self.room_id,
            "file": self.path.name,
            "format": "mp4-fragmented",
            "recovered": False,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "ended_at": datetime.datetime.now(datetime.UTC).isoformat(),
            "duration_seconds": self._duration(),
            "first_frame_after_start_seconds": self._first_frame_delay(),
            "tracks": tracks,
            "size": size,
            "sha256": sha,
            **self.meta,
        }
        self.manifest = seal_manifest(manifest, self.key)
        self.path.with_suffix(".manifest.json").write_text(json.dumps(self.manifest, ensure_ascii=False, indent=1))
        log.info("recording room %s finished: %s s", self.room_id, manifest["duration_seconds"])
        return self.manifest

    def _first_frame_delay(self) -> float | None:
        """Seconds from the start request to the arrival of the file's first frame."""
        if self._first_frame is None or self._start_request is None:
            return None
        return round(max(self._first_frame - self._start_request, 0.0), 3)

    def _duration(self) -> float:
        ends = [float(t.last_pts * t.time_base) for t in self._tracks.values() if t.packets]
        return round(max(ends), 3) if ends else 0.0

    # --- writer thread -----------------------------------------------------

    def _run(self) -> None:
        container: Any = None
        t0: float | None = None
        pending: list[tuple[str, bytes, int, Any, float, bool]] = []
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    break
                kind, data, pts, tb, arrival, key = item
                if data is None or pts is None:
                    continue
                if container is None:
                    if "video" in self._tracks and kind != "video":
                        if len(pending) < _MAX_PENDING:
                            pending.append((kind, data, pts, tb, arrival, key))
                        continue
                    container = self._open(data if kind == "video" else None)
                    t0 = self._first_frame = arrival
                    held, pending = pending, []
                    for p in held:
                        if p[4] >= t0:  # audio from before the first keyframe is dropped
                            self._write(container, t0, *p)
                assert t0 is not None
                self._write(container, t0, kind, data, pts, tb, arrival, key)
        except BaseException as exc:  # reported by finish_blocking
            self._error = exc
            log.exception("recorder %s failed", self.room_id)
        finally:
            if container is not None:
                with contextlib.suppress(Exception):
                    container.close()

    def _open(self, keyframe: bytes | None) -> Any:
        container = av.open(str(self.path), "w", format="mp4", options=MP4_OPTIONS)
        video = self._tracks.get("video")
        if video is not None:
            width, height = _frame_size(video.codec, keyframe or b"")
            video.stream = container.add_mux_stream(video.codec, width=width, height=height, time_base=_VIDEO_TB)
        audio = self._tracks.get("audio")
        if audio is not None:
            # An encoder context that never encodes: opening it gives the muxer
            # the Opus header (extradata) and frame size a mux-only stream lacks.
            audio.stream = container.add_stream("libopus", rate=48000, layout="stereo")
        return container

    def _write(
        self, container: Any, t0: float, kind: str, data: bytes, pts: int, tb: Any, arrival: float, key: bool
    ) -> None:
        track = self._tracks[kind]
        if track.last_in is not None and pts - track.last_in < -_RTP_HALF:
            track.unwrap += 2 * _RTP_HALF  # the 32-bit RTP timestamp wrapped
        track.last_in = pts
        pts += track.unwrap
        if track.anchor is None:
            track.anchor = (pts, arrival)
        first_pts, first_arrival = track.anchor
        seconds = (first_arrival - t0) + float((pts - first_pts) * tb)
        out_pts = round(seconds / track.time_base)
        if out_pts <= track.last_pts:
            out_pts = track.last_pts + 1
        packet = av.Packet(data)
        packet.pts = out_pts
        packet.dts = out_pts
        packet.time_base = track.time_base
        packet.stream = track.stream
        packet.is_keyframe = key
        container.mux(packet)
        track.last_pts = out_pts
        if track.first_pts is None:
            track.first_pts = out_pts
        track.packets += 1


def _frame_size(codec: str, keyframe: bytes) -> tuple[int, int]:
    """Picture size from one keyframe (one decode per recording, not per frame)."""
    decoder: Any = av.CodecContext.create(codec, "r")
    packet = av.Packet(keyframe)
    frames = decoder.decode(packet) + decoder.decode(None)
    for frame in frames:
        if isinstance(frame, av.VideoFrame):
            return frame.width, frame.height
    raise ValueError("the first video keyframe does not decode")
