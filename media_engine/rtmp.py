"""RTMP ingest: one asyncio server port, many publishers (WeChat ``live-pusher``, ffmpeg).

The subset a pusher needs: simple handshake, the chunk stream (all four chunk
header formats, extended timestamps, Set Chunk Size), AMF0 commands
``connect`` / ``releaseStream`` / ``FCPublish`` / ``createStream`` /
``publish`` / ``deleteStream``, and FLV audio/video tags. Play is not served
here (players use HTTP-FLV).

Each publish joins a room as a publisher without a peer connection: H.264
passes through (AVCC -> Annex-B, SPS/PPS in front of every keyframe). AAC is
passed through too, as ``publisher.aac_audio`` (FLV/HLS take it as it is), and
transcoded to Opus once per track for ``sources["audio"]`` only while an Opus
consumer (WebRTC subscriber, recorder) is attached. The stream name is ``<room>?grant=...``;
``authorize(room, grant)`` returns the peer id or raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import hashlib
import logging
import os
import struct
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from .audio import AacSource, AudioTranscoder, DemandSource
from .codecs import EncodedPacket
from .flv import AvcConfig, annexb, avcc_to_annexb, parse_avc_config
from .forwarding import TrackSource
from .grants import GrantError
from .room import MediaEngine, Publisher

log = logging.getLogger(__name__)

Authorize = Callable[[str, str], str]
_VIDEO_TB = fractions.Fraction(1, 90000)
_AAC_TB = fractions.Fraction(1, 1000)  # RTMP timestamps, the video's clock
_OUT_CHUNK = 4096
# A push whose URL grant expired may reconnect this long after its session ended
# (live-pusher reconnects with the URL it was given; the grant only admits joining).
RECONNECT_SECONDS = 120.0


class RtmpError(Exception):
    pass


# --- AMF0 ------------------------------------------------------------------


class _Undefined:
    pass


UNDEFINED = _Undefined()


def amf0_encode(*values: Any) -> bytes:
    out = bytearray()
    for value in values:
        if value is None:
            out.append(5)
        elif value is UNDEFINED:
            out.append(6)
        elif isinstance(value, bool):
            out += bytes([1, int(value)])
        elif isinstance(value, int | float):
            out += b"\x00" + struct.pack(">d", float(value))
        elif isinstance(value, str):
            raw = value.encode()
            out += b"\x02" + struct.pack(">H", len(raw)) + raw
        elif isinstance(value, dict):
            out.append(3)
            for key, item in value.items():
                raw = key.encode()
                out += struct.pack(">H", len(raw)) + raw + amf0_encode(item)
            out += b"\x00\x00\x09"
        else:
            raise TypeError(f"AMF0 cannot encode {type(value)}")
    return bytes(out)


def amf0_decode(data: bytes) -> list[Any]:
    values: list[Any] = []
    i = 0

    def string(i: int, long: bool = False) -> tuple[str, int]:
        size_len = 4 if long else 2
        size = int.from_bytes(data[i : i + size_len], "big")
        return data[i + size_len : i + size_len + size].decode(errors="replace"), i + size_len + size

    def value(i: int) -> tuple[Any, int]:
        marker = data[i]
        i += 1
        if marker == 0:
            return struct.unpack_from(">d", data, i)[0], i + 8
        if marker == 1:
            return bool(data[i]), i + 1
        if marker == 2:
            return string(i)
        if marker == 12:
            return string(i, long=True)
        if marker in (5, 6):
            return None, i
        if marker in (3, 8):
            if marker == 8:
                i += 4
            obj: dict[str, Any] = {}
            while i + 3 <= len(data):
                if data[i : i + 3] == b"\x00\x00\x09":
                    return obj, i + 3
                key, i = string(i)
                obj[key], i = value(i)
            return obj, i
        if marker == 10:
            count = int.from_bytes(data[i : i + 4], "big")
            i += 4
            items = []
            for _ in range(count):
                item, i = value(i)
                items.append(item)
            return items, i
        raise RtmpError(f"AMF0 marker {marker} not supported")

    while i < len(data):
        item, i = value(i)
        values.append(item)
    return values


# --- tracks ----------------------------------------------------------------


class QueueTrack(MediaStreamTrack):
    """An encoded track fed by the ingest session."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._queue: asyncio.Queue[EncodedPacket | None] = asyncio.Queue()

    def push(self, packet: EncodedPacket | None) -> None:
        self._queue.put_nowait(packet)

    async def recv(self) -> EncodedPacket:
        if self.readyState != "live":
            raise MediaStreamError
        packet = await self._queue.get()
        if packet is None:
            self.stop()
            raise MediaStreamError
        return packet


# --- session ---------------------------------------------------------------


class _ChunkState:
    __slots__ = ("buffer", "delta", "extended", "length", "stream_id", "timestamp", "type_id")

    def __init__(self) -> None:
        self.timestamp = 0
        self.delta = 0
        self.length = 0
        self.type_id = 0
        self.stream_id = 0
        self.buffer = bytearray()
        self.extended = False


class RtmpSession:
    def __init__(
        self,
        server: RtmpServer,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.in_chunk = 128
        self.chunks: dict[int, _ChunkState] = {}
        self.app = ""
        self.room_id: str | None = None
        self.peer_id: str | None = None
        self.publisher: Publisher | None = None
        self.lease = ""  # the grant that admitted this push
        self.tracks: dict[str, QueueTrack] = {}
        self.avc: AvcConfig | None = None
        self.aac: AudioTranscoder | None = None  # AAC -> Opus, while an Opus consumer is attached
        self.asc: bytes | None = None  # AudioSpecificConfig of the last AAC sequence header
        self.kinds: set[str] = {"video", "audio"}
        self.bytes_in = 0
        self.ack_window = 2_500_000
        self.last_ack = 0
        self.video_frames = 0
        self.audio_frames = 0

    # --- I/O ---

    async def read(self, n: int) -> bytes:
        data = await self.reader.readexactly(n)
        self.bytes_in += n
        return data

    def send(self, csid: int, type_id: int, stream_id: int, payload: bytes, timestamp: int = 0) -> None:
        header = bytes([csid & 0x3F]) + min(timestamp, 0xFFFFFF).to_bytes(3, "big")
        header += len(payload).to_bytes(3, "big") + bytes([type_id]) + struct.pack("<I", stream_id)
        out = bytearray(header)
        for offset in range(0, len(payload), _OUT_CHUNK):
            if offset:
                out.append(0xC0 | (csid & 0x3F))
            out += payload[offset : offset + _OUT_CHUNK]
        self.writer.write(bytes(out))

    def command(self, stream_id: int, *values: Any) -> None:
        self.send(3 if stream_id == 0 else 5, 20, stream_id, amf0_encode(*values))

    # --- protocol ---

    async def handshake(self) -> None:
        c0 = await self.read(1)
        if c0[0] != 3:
            raise RtmpError(f"RTMP version {c0[0]}")
        c1 = await self.read(1536)
        s1 = b"\x00" * 8 + os.urandom(1528)
        self.writer.write(b"\x03" + s1 + c1)
        await self.writer.drain()
        await self.read(1536)  # C2

    async def run(self) -> None:
        try:
            await asyncio.wait_for(self.handshake(), 10)
            while True:
                _csid, state = await self.read_chunk()
                if len(state.buffer) >= state.length:
                    payload = bytes(state.buffer[: state.length])
                    state.buffer.clear()
                    await self.on_message(state.type_id, state.stream_id, state.timestamp, payload)
                if self.bytes_in - self.last_ack >= self.ack_window:
                    self.last_ack = self.bytes_in
                    self.send(2, 3, 0, struct.pack(">I", self.bytes_in & 0xFFFFFFFF))
                await self.writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            pass
        except RtmpError as exc:
            log.warning("rtmp session ended: %s", exc)
        finally:
            await self.close()

    async def read_chunk(self) -> tuple[int, _ChunkState]:
        first = (await self.read(1))[0]
        fmt = first >> 6
        csid = first & 0x3F
        if csid == 0:
            csid = 64 + (await self.read(1))[0]
        elif csid == 1:
            b = await self.read(2)
            csid = 64 + b[0] + b[1] * 256
        state = self.chunks.get(csid)
        if state is None:
            if fmt != 0:
                raise RtmpError("chunk stream starts without a full header")
            state = self.chunks[csid] = _ChunkState()
        new_message = not state.buffer
        if fmt <= 2:
            h = await self.read({0: 11, 1: 7, 2: 3}[fmt])
            ts = int.from_bytes(h[0:3], "big")
            if fmt <= 1:
                state.length = int.from_bytes(h[3:6], "big")
                state.type_id = h[6]
            if fmt == 0:
                state.stream_id = struct.unpack("<I", h[7:11])[0]
            state.extended = ts == 0xFFFFFF
            if state.extended:
                ts = struct.unpack(">I", await self.read(4))[0]
            if fmt == 0:
                state.timestamp = ts
                state.delta = 0
            else:
                state.delta = ts
                state.timestamp += ts
        else:
            if state.extended:
                await self.read(4)
            if new_message:
                state.timestamp += state.delta
        need = min(self.in_chunk, state.length - len(state.buffer))
        state.buffer += await self.read(need)
        return csid, state

    async def on_message(self, type_id: int, stream_id: int, timestamp: int, payload: bytes) -> None:
        if type_id == 1:
            self.in_chunk = struct.unpack(">I", payload[:4])[0] & 0x7FFFFFFF
        elif type_id == 5:
            self.ack_window = struct.unpack(">I", payload[:4])[0]
        elif type_id == 20:
            await self.on_command(stream_id, amf0_decode(payload))
        elif type_id == 18:
            values = amf0_decode(payload)
            meta = next((v for v in values if isinstance(v, dict)), None)
            if meta is not None and self.publisher is None:
                kinds = set()
                if meta.get("videocodecid") is not None:
                    kinds.add("video")
                if meta.get("audiocodecid") is not None:
                    kinds.add("audio")
                self.kinds = kinds or self.kinds
        elif type_id == 9 and self.room_id is not None:
            await self.on_video(timestamp, payload)
        elif type_id == 8 and self.room_id is not None:
            await self.on_audio(timestamp, payload)

    async def on_command(self, stream_id: int, values: list[Any]) -> None:
        if not values:
            return
        name, txn = values[0], values[1] if len(values) > 1 else 0
        if name == "connect":
            obj = values[2] if len(values) > 2 and isinstance(values[2], dict) else {}
            self.app = str(obj.get("app", ""))
            self.send(2, 5, 0, struct.pack(">I", 2_500_000))
            self.send(2, 6, 0, struct.pack(">IB", 2_500_000, 2))
            self.send(2, 1, 0, struct.pack(">I", _OUT_CHUNK))
            self.command(
                0,
                "_result",
                txn,
                {"fmsVer": "FMS/3,0,1,123", "capabilities": 31},
                {
                    "level": "status",
                    "code": "NetConnection.Connect.Success",
                    "description": "Connection succeeded.",
                    "objectEncoding": 0,
                },
            )
        elif name == "createStream":
            self.command(0, "_result", txn, None, 1)
        elif name == "publish":
            await self.on_publish(stream_id or 1, str(values[3]) if len(values) > 3 else "")
        elif name in ("deleteStream", "FCUnpublish", "closeStream"):
            await self.unpublish()
        elif txn:
            self.command(0, "_result", txn, None, UNDEFINED)

    async def on_publish(self, stream_id: int, name: str) -> None:
        room_id, _, query = name.partition("?")
        grant = urllib.parse.parse_qs(query).get("grant", [""])[0]
        if not grant and "?" in self.app:
            grant = urllib.parse.parse_qs(self.app.partition("?")[2]).get("grant", [""])[0]
        try:
            self.peer_id = self.server.admit(room_id, grant)
            self.lease = grant
        except Exception as exc:
            log.info("rtmp publish to %r refused: %s", room_id, exc)
            self.command(
                stream_id,
                "onStatus",
                0,
                None,
                {"level": "error", "code": "NetStream.Publish.BadName", "description": "授权凭证无效"},
            )
            await self.writer.drain()
            raise RtmpError("publish refused") from exc
        self.room_id = room_id
        self.send(2, 4, 0, struct.pack(">HI", 0, stream_id))  # Stream Begin
        self.command(
            stream_id,
            "onStatus",
            0,
            None,
            {"level": "status", "code": "NetStream.Publish.Start", "description": f"{room_id} is now published."},
        )
        log.info("rtmp publisher %s joined room %s", self.peer_id, room_id)

    async def _ensure_publisher(self) -> None:
        if self.publisher is not None or self.room_id is None or self.peer_id is None:
            return
        publisher = Publisher(peer_id=self.peer_id, pc=None)
        for kind in sorted(self.kinds):
            track = self.tracks[kind] = QueueTrack(kind)
            label = f"{self.room_id}/{self.peer_id}/{kind}/rtmp"
            if kind == "audio":
                aac_track = self.tracks["aac"] = QueueTrack("audio")
                publisher.aac_audio = AacSource(track=aac_track, extradata=self.asc, label=f"{label}/aac")
                publisher.aac_audio.start()
                publisher.sources[kind] = DemandSource(
                    kind=kind,
                    codec_name="opus",
                    track=track,
                    request_keyframe=lambda: True,
                    label=label,
                    on_demand=self._opus_demand,
                )
                continue
            publisher.sources[kind] = TrackSource(
                kind=kind,
                codec_name="H264",
                track=track,
                # RTMP has no keyframe request: the GOP cache serves new sinks.
                request_keyframe=lambda: True,
                label=label,
            )
        publisher.on_replaced = self._replaced
        self.publisher = publisher
        await self.server.engine.room(self.room_id).add_publisher(publisher)

    def _replaced(self) -> None:
        """A new push of the same peer took over (a reconnecting live-pusher): drop this one."""
        log.info("rtmp publisher %s in room %s replaced by a new session", self.peer_id, self.room_id)
        self.publisher = None
        self.writer.close()

    async def on_video(self, timestamp: int, payload: bytes) -> None:
        if len(payload) < 5 or payload[0] & 0x0F != 7:
            return  # only H.264
        keyframe = payload[0] >> 4 == 1
        packet_type = payload[1]
        cts = int.from_bytes(payload[2:5], "big", signed=True)
        if packet_type == 0:
            self.avc = parse_avc_config(payload[5:])
            return
        if packet_type != 1 or self.avc is None:
            return
        await self._ensure_publisher()
        track = self.tracks.get("video")
        if track is None:
            return
        units = avcc_to_annexb(payload[5:], self.avc.length_size)
        if keyframe and not any(u and u[0] & 0x1F == 7 for u in units):
            units = [*self.avc.sps, *self.avc.pps, *units]
        packet = av.Packet(annexb(units))
        packet.pts = (timestamp + cts) * 90
        packet.dts = timestamp * 90
        packet.time_base = _VIDEO_TB
        packet.is_keyframe = keyframe
        self.video_frames += 1
        track.push(packet)

    def _opus_demand(self, wanted: bool) -> None:
        """Start AAC -> Opus for the first Opus sink, stop it with the last (or the source's end)."""
        opus = self.publisher.sources.get("audio") if self.publisher is not None else None
        aac_track, opus_track = self.tracks.get("aac"), self.tracks.get("audio")
        if opus is not None and opus.ended.is_set() and aac_track is not None:
            aac_track.push(None)  # the room ended the publication: the AAC source ends with it
        if self.aac is not None and not wanted:
            self.aac.close()
            self.aac = None
        elif self.aac is None and wanted and self.asc is not None and opus_track is not None:
            self.aac = AudioTranscoder(
                "aac",
                "opus",
                opus_track.push,
                loop=asyncio.get_running_loop(),
                src_extradata=self.asc,
                label=f"{self.room_id}/{self.peer_id}",
            )

    async def on_audio(self, timestamp: int, payload: bytes) -> None:
        if len(payload) < 2 or payload[0] >> 4 != 10:
            return  # only AAC
        if payload[1] == 0:
            asc = payload[2:]
            if asc != self.asc:
                self.asc = asc
                if self.publisher is not None:
                    if isinstance(self.publisher.aac_audio, AacSource):
                        self.publisher.aac_audio.extradata = asc
                    opus = self.publisher.sources.get("audio")
                    if isinstance(opus, DemandSource):
                        self._opus_demand(False)  # a new config: a new decoder
                        self._opus_demand(opus.wanted)
            return
        if self.asc is None:
            return
        await self._ensure_publisher()
        self.audio_frames += 1
        aac_track = self.tracks.get("aac")
        if aac_track is not None:
            packet = av.Packet(payload[2:])
            packet.pts = packet.dts = timestamp
            packet.time_base = _AAC_TB
            packet.is_keyframe = True
            aac_track.push(packet)
        if self.aac is not None:
            self.aac.feed(payload[2:], timestamp * 48)
        elif self.publisher is not None:
            opus = self.publisher.sources.get("audio")
            if isinstance(opus, DemandSource):
                opus.heard()  # no Opus consumer: nothing transcoded, but the push is alive

    async def unpublish(self) -> None:
        if self.aac is not None:
            self.aac.close()
            self.aac = None
        for track in self.tracks.values():
            track.push(None)
        self.tracks = {}
        if self.publisher is not None and self.room_id is not None:
            room = self.server.engine.rooms.get(self.room_id)
            publisher, self.publisher = self.publisher, None
            if room is not None:
                # Only this session's publication: a newer push of the same peer stays.
                await room.unpublish(publisher.peer_id, expected=publisher)
        self.room_id = None

    async def close(self) -> None:
        await self.unpublish()
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()
        self.server.sessions.discard(self)
        if self.lease:
            self.server.release(self.lease)
            self.lease = ""


class RtmpServer:
    """Accepts RTMP publishers on one port and joins each to its room."""

    def __init__(self, engine: MediaEngine, authorize: Authorize) -> None:
        self.engine = engine
        self.authorize = authorize
        self.sessions: set[RtmpSession] = set()
        # sha256(grant) -> (room, peer, usable until (monotonic) or None while a session holds it)
        self._leases: dict[str, tuple[str, str, float | None]] = {}
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self, host: str = "127.0.0.1", port: int = 1935) -> int:
        self._server = await asyncio.start_server(self._accept, host, port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        log.info("rtmp ingest listening on %s:%d", host, self.port)
        return self.port

    def admit(self, room_id: str, grant: str) -> str:
        """The peer a push with this grant publishes as. The grant admits joining; once it has,
        the same URL reconnects while its session lives and for :data:`RECONNECT_SECONDS`
        after, even past the grant's expiry."""
        key = hashlib.sha256(grant.encode()).hexdigest()
        try:
            peer = self.authorize(room_id, grant)
        except GrantError as exc:
            lease = self._leases.get(key)
            usable = lease is not None and lease[0] == room_id and (lease[2] is None or lease[2] >= time.monotonic())
            if exc.code != "grant.expired" or lease is None or not usable:
                raise
            peer = lease[1]
        self._leases[key] = (room_id, peer, None)
        return peer

    def release(self, grant: str) -> None:
        """The session admitted by ``grant`` ended: its URL may reconnect for a while."""
        now = time.monotonic()
        key = hashlib.sha256(grant.encode()).hexdigest()
        if any(s.lease == grant for s in self.sessions):
            return  # another session (the reconnect) still holds it
        for k, (_, _, until) in list(self._leases.items()):
            if until is not None and until < now:
                del self._leases[k]
        lease = self._leases.get(key)
        if lease is not None:
            self._leases[key] = (lease[0], lease[1], now + RECONNECT_SECONDS)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = RtmpSession(self, reader, writer)
        self.sessions.add(session)
        await session.run()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for session in list(self.sessions):
            await session.close()
        if self._server is not None:
            await self._server.wait_closed()
