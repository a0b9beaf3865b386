"""RTMP ingest: one asyncio server port, many publishers (WeChat ``live-pusher``, ffmpeg).

The subset a pusher needs: simple handshake, the chunk stream (all four chunk
header formats, extended timestamps, Set Chunk Size), AMF0 commands
``connect`` / ``releaseStream`` / ``FCPublish`` / ``createStream`` /
``publish`` / ``deleteStream``, and FLV audio/video tags. Play is not served
here (players use HTTP-FLV). This module holds the session and the server:
handshake, commands, FLV tag handling, publisher registration, the leases
that let a pusher reconnect, and replacement of an older session; the
encodings underneath are :mod:`media_engine.amf0` and
:mod:`media_engine.rtmp_chunks` (chunk stream, message types, protocol control).

Each publish joins a room as a publisher without a peer connection: H.264
passes through (AVCC -> Annex-B, SPS/PPS in front of every keyframe). AAC is
passed through too, as ``publisher.aac_audio`` (FLV/HLS take it as it is), and
transcoded to Opus once per track for ``sources["audio"]`` only while an Opus
consumer (WebRTC subscriber, recorder) is attached. The stream name is ``<room>?grant=...``;
``authorize(room, grant)`` returns the peer id (or the peer and the grant's login
session ``sid``) or raises. A push registers itself under its sid
(:meth:`MediaEngine.track_sid`): when that login session is revoked the
connection is closed, its URL no longer reconnects, and a grant of that sid is
refused (``engine.revoked``). A room closed by ``room.close`` (``engine.closed``) takes no
publish and no reconnect (``media.room_closed``); its pushes were closed with it.

Limits (keyword settings of :class:`RtmpServer`, see :class:`RtmpLimits`): a
message may be 1 MiB until a publish is authorised and 8 MiB after; AMF
command/data messages 64 KiB, decoded with a depth and value-count bound;
handshake + connect + publish must complete within 10 s and, while not
publishing, a connection that sends nothing for 30 s is closed; at most 10
connections per client IP and 200 in all. Each limit closes the connection
with one log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fractions
import hashlib
import logging
import os
import time
import urllib.parse
from collections.abc import Callable
from enum import IntEnum
from typing import Any

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from .amf0 import UNDEFINED, Amf0Error, amf0_decode, amf0_encode
from .audio import AacSource, AudioTranscoder, DemandSource
from .codecs import EncodedPacket
from .flv import AvcConfig, annexb, avcc_to_annexb, parse_avc_config
from .forwarding import TrackSource
from .grants import GrantError
from .room import ROOM_CLOSED, ROOM_CLOSED_MESSAGE, MediaEngine, MediaError, Publisher, admission, issued_at
from .rtmp_chunks import (
    ChunkReader,
    ChunkStreamId,
    MessageType,
    PeerBandwidthLimit,
    RtmpError,
    UserControlEvent,
    acknowledgement,
    encode_message,
    parse_set_chunk_size,
    parse_window_ack_size,
    set_chunk_size,
    set_peer_bandwidth,
    user_control,
    window_ack_size,
)

log = logging.getLogger(__name__)

Authorize = Callable[[str, str], str | tuple[str, str] | tuple[str, str, float | None]]
_VIDEO_TB = fractions.Fraction(1, 90000)
_AAC_TB = fractions.Fraction(1, 1000)  # RTMP timestamps, the video's clock
_OUT_CHUNK = 4096  # the chunk size this server sends with (announced by Set Chunk Size on connect)
# A push whose URL grant expired may reconnect this long after its session ended
# (live-pusher reconnects with the URL it was given; the grant only admits joining).
RECONNECT_SECONDS = 120.0


# --- FLV tag bodies (RTMP audio/video messages) -----------------------------


class VideoFrameType(IntEnum):
    """The high nibble of an FLV video tag's first byte."""

    KEYFRAME = 1
    INTER = 2
    DISPOSABLE_INTER = 3
    GENERATED_KEYFRAME = 4
    INFO = 5


class VideoCodec(IntEnum):
    """The low nibble of an FLV video tag's first byte (only AVC is ingested)."""

    SORENSON_H263 = 2
    SCREEN = 3
    VP6 = 4
    VP6_ALPHA = 5
    SCREEN_V2 = 6
    AVC = 7


class AvcPacketType(IntEnum):
    """The byte after an AVC video tag's first byte."""

    SEQUENCE_HEADER = 0  # an AVCDecoderConfigurationRecord
    NALU = 1  # length-prefixed NAL units
    END_OF_SEQUENCE = 2


class SoundFormat(IntEnum):
    """The high nibble of an FLV audio tag's first byte (only AAC is ingested)."""

    LINEAR_PCM = 0
    ADPCM = 1
    MP3 = 2
    NELLYMOSER = 6
    G711_ALAW = 7
    G711_MULAW = 8
    AAC = 10
    SPEEX = 11


class AacPacketType(IntEnum):
    """The byte after an AAC audio tag's first byte."""

    SEQUENCE_HEADER = 0  # an AudioSpecificConfig
    RAW = 1  # one raw AAC frame


_NAL_SPS = 7  # H.264 nal_unit_type of a sequence parameter set

# --- handshake and connection parameters ------------------------------------

RTMP_VERSION = 3  # C0/S0
HANDSHAKE_SIZE = 1536  # C1/S1/C2/S2
_WINDOW = 2_500_000  # the acknowledgement window and peer bandwidth this server sets (and assumes)
_MESSAGE_STREAM = 1  # the message stream createStream hands out (the one a publish uses)


@dataclasses.dataclass(frozen=True)
class RtmpLimits:
    """What one connection (and one client IP) may hold before it is closed."""

    max_message_before_publish: int = 1024 * 1024  # bytes of one message until a publish is authorised
    max_message: int = 8 * 1024 * 1024  # ... and after (a video keyframe)
    max_command: int = 64 * 1024  # bytes of one AMF command / data message
    setup_timeout: float = 10.0  # seconds from accept to an authorised publish (handshake, connect, publish)
    idle_timeout: float = 30.0  # seconds without a byte while not publishing
    publish_read_timeout: float = 20.0  # seconds without a byte while publishing (a stalled or half-open push)
    max_per_ip: int = 10  # connections open at once from one client IP
    max_connections: int = 200  # connections open at once in all


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


class RtmpSession:
    """One TCP connection: handshake, chunk stream, commands, then at most one publication at a time."""

    def __init__(
        self,
        server: RtmpServer,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        limits = server.limits
        # reassembly state and the peer's chunk size
        self.chunks = ChunkReader(
            self.read, max_message=limits.max_message_before_publish, max_command=limits.max_command
        )
        peer = writer.get_extra_info("peername")
        self.ip = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        # monotonic time by which a publish must be authorised; None once one was
        self.setup_deadline: float | None = time.monotonic() + limits.setup_timeout
        self.app = ""
        self.room_id: str | None = None
        self.peer_id: str | None = None
        self.publisher: Publisher | None = None
        self.lease = ""  # the grant that admitted this push
        self.sid = ""  # the login session of that grant ("" for none)
        self.revoked = False  # closed because that login session ended
        self._untrack: Callable[[], None] = lambda: None
        self._untrack_peer: Callable[[], None] = lambda: None
        self.tracks: dict[str, QueueTrack] = {}
        self.avc: AvcConfig | None = None
        self.aac: AudioTranscoder | None = None  # AAC -> Opus, while an Opus consumer is attached
        self.asc: bytes | None = None  # AudioSpecificConfig of the last AAC sequence header
        self.kinds: set[str] = {"video", "audio"}
        self.bytes_in = 0
        self.ack_window = _WINDOW
        self.last_ack = 0
        self.video_frames = 0
        self.audio_frames = 0

    # --- I/O ---

    async def read(self, n: int) -> bytes:
        if self.room_id is not None:
            # Publishing: a live push sends frames many times a second; a publisher gone quiet
            # (stalled network, half-open TCP) is closed so its players and recorder see it leave.
            timeout = self.server.limits.publish_read_timeout
            try:
                data = await asyncio.wait_for(self.reader.readexactly(n), timeout)
            except TimeoutError:
                raise RtmpError(f"publisher silent for {timeout:g} s") from None
        else:
            timeout = self.server.limits.idle_timeout
            reason = f"idle for {timeout:g} s before publish"
            if self.setup_deadline is not None and self.setup_deadline - time.monotonic() < timeout:
                timeout = max(0.0, self.setup_deadline - time.monotonic())
                reason = f"no publish within {self.server.limits.setup_timeout:g} s"
            try:
                data = await asyncio.wait_for(self.reader.readexactly(n), timeout)
            except TimeoutError:
                raise RtmpError(reason) from None
        self.bytes_in += n
        return data

    def send(self, csid: int, type_id: int, stream_id: int, payload: bytes, timestamp: int = 0) -> None:
        self.writer.write(encode_message(csid, type_id, stream_id, payload, chunk_size=_OUT_CHUNK, timestamp=timestamp))

    def control(self, type_id: MessageType, payload: bytes) -> None:
        """A protocol control or user control message (chunk stream 2, message stream 0)."""
        self.send(ChunkStreamId.PROTOCOL_CONTROL, type_id, 0, payload)

    def command(self, stream_id: int, *values: Any) -> None:
        csid = ChunkStreamId.COMMAND if stream_id == 0 else ChunkStreamId.STREAM_COMMAND
        self.send(csid, MessageType.COMMAND_AMF0, stream_id, amf0_encode(*values))

    # --- protocol ---

    async def handshake(self) -> None:
        c0 = await self.read(1)
        if c0[0] != RTMP_VERSION:
            raise RtmpError(f"RTMP version {c0[0]}")
        c1 = await self.read(HANDSHAKE_SIZE)
        s1 = b"\x00" * 8 + os.urandom(HANDSHAKE_SIZE - 8)  # time and zero, then random bytes
        self.writer.write(bytes([RTMP_VERSION]) + s1 + c1)  # S0, S1, and C1 echoed as S2
        await self.writer.drain()
        await self.read(HANDSHAKE_SIZE)  # C2

    async def run(self) -> None:
        try:
            await self.handshake()
            while True:
                _csid, state = await self.chunks.read_chunk()
                payload = state.complete()
                if payload is not None:
                    await self.on_message(state.type_id, state.stream_id, state.timestamp, payload)
                if self.bytes_in - self.last_ack >= self.ack_window:
                    self.last_ack = self.bytes_in
                    self.control(MessageType.ACK, acknowledgement(self.bytes_in))
                await self.writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            pass
        except (RtmpError, Amf0Error) as exc:
            log.warning("rtmp session from %s ended: %s", self.ip, exc)
        finally:
            await self.close()

    async def on_message(self, type_id: int, stream_id: int, timestamp: int, payload: bytes) -> None:
        if type_id == MessageType.SET_CHUNK_SIZE:
            self.chunks.chunk_size = parse_set_chunk_size(payload)
        elif type_id == MessageType.WINDOW_ACK_SIZE:
            self.ack_window = parse_window_ack_size(payload)
        elif type_id == MessageType.COMMAND_AMF0:
            await self.on_command(stream_id, amf0_decode(payload))
        elif type_id == MessageType.DATA_AMF0:
            values = amf0_decode(payload)
            meta = next((v for v in values if isinstance(v, dict)), None)
            if meta is not None and self.publisher is None:
                kinds = set()
                if meta.get("videocodecid") is not None:
                    kinds.add("video")
                if meta.get("audiocodecid") is not None:
                    kinds.add("audio")
                self.kinds = kinds or self.kinds
        elif type_id == MessageType.VIDEO and self.room_id is not None:
            await self.on_video(timestamp, payload)
        elif type_id == MessageType.AUDIO and self.room_id is not None:
            await self.on_audio(timestamp, payload)

    async def on_command(self, stream_id: int, values: list[Any]) -> None:
        if not values:
            return
        name, txn = values[0], values[1] if len(values) > 1 else 0
        if name == "connect":
            obj = values[2] if len(values) > 2 and isinstance(values[2], dict) else {}
            self.app = str(obj.get("app", ""))
            self.control(MessageType.WINDOW_ACK_SIZE, window_ack_size(_WINDOW))
            self.control(MessageType.SET_PEER_BANDWIDTH, set_peer_bandwidth(_WINDOW, PeerBandwidthLimit.DYNAMIC))
            self.control(MessageType.SET_CHUNK_SIZE, set_chunk_size(_OUT_CHUNK))
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
            self.command(0, "_result", txn, None, _MESSAGE_STREAM)
        elif name == "publish":
            await self.on_publish(stream_id or _MESSAGE_STREAM, str(values[3]) if len(values) > 3 else "")
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
            self.peer_id, self.sid = self.server.admit(room_id, grant)
            self.lease = grant
        except Exception as exc:
            code, description = "grant.invalid", "授权凭证无效"
            if isinstance(exc, GrantError | MediaError):
                code, description = exc.code, exc.message
            log.info("rtmp publish to %r refused: %s (%s)", room_id, exc, code)
            self.command(
                stream_id,
                "onStatus",
                0,
                None,
                {"level": "error", "code": "NetStream.Publish.BadName", "description": description},
            )
            await self.writer.drain()
            raise RtmpError("publish refused") from exc
        self.room_id = room_id
        self._untrack = self.server.engine.track_sid(self.sid, self._revoke)
        self._untrack_peer = self.server.engine.track_peer(room_id, str(self.peer_id), self._kicked)
        self.setup_deadline = None
        self.chunks.max_message = self.server.limits.max_message
        self.control(MessageType.USER_CONTROL, user_control(UserControlEvent.STREAM_BEGIN, stream_id))
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
        if self.server.engine.closed.is_closed(self.room_id):
            self.revoked = True  # the room was closed between the publish and its first frame
            raise RtmpError(f"room {self.room_id} closed")
        publisher = Publisher(peer_id=self.peer_id, pc=None, sid=self.sid)
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

    def _revoke(self) -> None:
        """The login session of this push's grant ended (logout): close the connection."""
        log.info("rtmp publisher %s in room %s ended: its login session was revoked", self.peer_id, self.room_id)
        self.revoked = True
        self.writer.close()

    def _kicked(self) -> None:
        """The peer was removed from the room's conversation: close the connection, no reconnect."""
        log.info("rtmp publisher %s in room %s ended: removed from the room", self.peer_id, self.room_id)
        self.revoked = True
        self.writer.close()

    def _replaced(self) -> None:
        """A new push of the same peer took over (a reconnecting live-pusher): drop this one."""
        log.info("rtmp publisher %s in room %s replaced by a new session", self.peer_id, self.room_id)
        self.publisher = None
        self.writer.close()

    async def on_video(self, timestamp: int, payload: bytes) -> None:
        if len(payload) < 5 or payload[0] & 0x0F != VideoCodec.AVC:
            return  # only H.264
        keyframe = payload[0] >> 4 == VideoFrameType.KEYFRAME
        packet_type = payload[1]
        cts = int.from_bytes(payload[2:5], "big", signed=True)  # composition time offset (ms)
        if packet_type == AvcPacketType.SEQUENCE_HEADER:
            self.avc = parse_avc_config(payload[5:])
            return
        if packet_type != AvcPacketType.NALU or self.avc is None:
            return
        await self._ensure_publisher()
        track = self.tracks.get("video")
        if track is None:
            return
        units = avcc_to_annexb(payload[5:], self.avc.length_size)
        if keyframe and not any(u and u[0] & 0x1F == _NAL_SPS for u in units):
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
        if len(payload) < 2 or payload[0] >> 4 != SoundFormat.AAC:
            return  # only AAC
        if payload[1] == AacPacketType.SEQUENCE_HEADER:
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
        self._untrack()
        self._untrack_peer()
        if self.lease:
            if self.revoked:
                self.server.forget(self.lease)  # no reconnect with the URL of an ended login
            else:
                self.server.release(self.lease)
            self.lease = ""


class RtmpServer:
    """Accepts RTMP publishers on one port and joins each to its room."""

    def __init__(
        self, engine: MediaEngine, authorize: Authorize, limits: RtmpLimits | None = None, **settings: Any
    ) -> None:
        """``limits`` or keyword settings (the fields of :class:`RtmpLimits`) bound each connection."""
        self.engine = engine
        self.authorize = authorize
        self.limits = dataclasses.replace(limits or RtmpLimits(), **settings)
        self.sessions: set[RtmpSession] = set()
        self.connections: dict[str, int] = {}  # client IP -> connections open (sessions and handshakes)
        # sha256(grant) -> (room, peer, usable until (monotonic) or None while a session holds
        # it, sid, when the grant was issued (Unix seconds) if it says)
        self._leases: dict[str, tuple[str, str, float | None, str, float | None]] = {}
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self, host: str = "127.0.0.1", port: int = 1935) -> int:
        self._server = await asyncio.start_server(self._accept, host, port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        log.info("rtmp ingest listening on %s:%d", host, self.port)
        return self.port

    def admit(self, room_id: str, grant: str) -> tuple[str, str]:
        """The peer a push with this grant publishes as, and its login session. The grant
        admits joining; once it has, the same URL reconnects while its session lives and for
        :data:`RECONNECT_SECONDS` after, even past the grant's expiry, unless its login
        session was revoked or the peer removed from the room meanwhile."""
        key = hashlib.sha256(grant.encode()).hexdigest()
        try:
            admitted = self.authorize(room_id, grant)
            (peer, sid), issued = admission(admitted), issued_at(admitted)
        except GrantError as exc:
            lease = self._leases.get(key)
            usable = lease is not None and lease[0] == room_id and (lease[2] is None or lease[2] >= time.monotonic())
            if exc.code != "grant.expired" or lease is None or not usable:
                raise
            peer, sid, issued = lease[1], lease[3], lease[4]
        if self.engine.closed.is_closed(room_id):  # ended by room.close: no publish, no reconnect
            self._leases.pop(key, None)
            raise GrantError(ROOM_CLOSED, ROOM_CLOSED_MESSAGE)
        if self.engine.revoked.is_revoked(sid):
            self._leases.pop(key, None)
            raise GrantError("grant.revoked", "登录已退出，授权凭证已失效")
        if not self.engine.kicked.admits(room_id, peer, issued):
            self._leases.pop(key, None)
            raise GrantError("grant.revoked", "已不在该会话中，授权凭证已失效")
        self._leases[key] = (room_id, peer, None, sid, issued)
        return peer, sid

    def forget(self, grant: str) -> None:
        """Drop the lease of ``grant`` (its login session ended: no reconnect)."""
        self._leases.pop(hashlib.sha256(grant.encode()).hexdigest(), None)

    def release(self, grant: str) -> None:
        """The session admitted by ``grant`` ended: its URL may reconnect for a while."""
        now = time.monotonic()
        key = hashlib.sha256(grant.encode()).hexdigest()
        if any(s.lease == grant for s in self.sessions):
            return  # another session (the reconnect) still holds it
        for k, (_, _, until, _, _) in list(self._leases.items()):
            if until is not None and until < now:
                del self._leases[k]
        lease = self._leases.get(key)
        if lease is not None:
            self._leases[key] = (lease[0], lease[1], now + RECONNECT_SECONDS, lease[3], lease[4])

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = RtmpSession(self, reader, writer)
        ip = session.ip
        total = sum(self.connections.values())
        if total >= self.limits.max_connections or self.connections.get(ip, 0) >= self.limits.max_per_ip:
            which = "in all" if total >= self.limits.max_connections else f"from {ip}"
            log.warning("rtmp connection from %s refused: too many connections %s", ip, which)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            return
        self.connections[ip] = self.connections.get(ip, 0) + 1
        self.sessions.add(session)
        try:
            await session.run()
        finally:
            left = self.connections.get(ip, 1) - 1
            if left > 0:
                self.connections[ip] = left
            else:
                self.connections.pop(ip, None)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for session in list(self.sessions):
            await session.close()
        if self._server is not None:
            await self._server.wait_closed()
