"""The RTMP chunk stream: message type ids, chunk reassembly and writing, protocol control.

Reading: :class:`ChunkReader` parses all four chunk header formats (with
extended timestamps) and keeps one :class:`ChunkState` per chunk stream id, in
which a message split over several chunks is reassembled; the peer's Set Chunk
Size goes into :attr:`ChunkReader.chunk_size`. A header announcing a message
longer than :attr:`ChunkReader.max_message` (or an AMF command/data message
longer than :attr:`ChunkReader.max_command`) is refused before any of its
payload is read, and the bytes held across unfinished messages of all chunk
streams are bounded by ``max_message`` too. Writing: :func:`encode_message`
splits one message into chunks (a full header, then continuation headers).
The payloads of the protocol control messages (Set Chunk Size, Acknowledgement,
Window Acknowledgement Size, Set Peer Bandwidth, User Control) are built and
parsed here; what a session does with them is :mod:`media_engine.rtmp`.
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable
from enum import IntEnum


class RtmpError(Exception):
    """A protocol violation (or a refused publish): the session ends."""


class MessageType(IntEnum):
    """RTMP message type ids (the type byte of a chunk message header)."""

    SET_CHUNK_SIZE = 1
    ABORT = 2
    ACK = 3
    USER_CONTROL = 4
    WINDOW_ACK_SIZE = 5
    SET_PEER_BANDWIDTH = 6
    AUDIO = 8
    VIDEO = 9
    DATA_AMF3 = 15
    SHARED_OBJECT_AMF3 = 16
    COMMAND_AMF3 = 17
    DATA_AMF0 = 18
    SHARED_OBJECT_AMF0 = 19
    COMMAND_AMF0 = 20
    AGGREGATE = 22


class UserControlEvent(IntEnum):
    """Event types of User Control messages (:attr:`MessageType.USER_CONTROL`)."""

    STREAM_BEGIN = 0
    STREAM_EOF = 1
    STREAM_DRY = 2
    SET_BUFFER_LENGTH = 3
    STREAM_IS_RECORDED = 4
    PING_REQUEST = 6
    PING_RESPONSE = 7


class PeerBandwidthLimit(IntEnum):
    """The limit type of Set Peer Bandwidth."""

    HARD = 0
    SOFT = 1
    DYNAMIC = 2


class ChunkStreamId(IntEnum):
    """The chunk stream ids this server sends on."""

    PROTOCOL_CONTROL = 2  # protocol control and user control messages (message stream 0)
    COMMAND = 3  # NetConnection commands (message stream 0)
    STREAM_COMMAND = 5  # NetStream commands (a message stream of createStream)


class ChunkFormat(IntEnum):
    """The ``fmt`` of a chunk basic header: how much of the message header follows."""

    FULL = 0  # timestamp, length, type id, message stream id (11 bytes)
    SAME_STREAM = 1  # timestamp delta, length, type id (7 bytes)
    TIMESTAMP_DELTA = 2  # timestamp delta (3 bytes)
    CONTINUATION = 3  # nothing: the previous header's values


DEFAULT_CHUNK_SIZE = 128  # until a Set Chunk Size
MAX_CHUNK_STREAMS = 64  # chunk streams one connection may open
_AMF_TYPES = frozenset(
    {
        MessageType.DATA_AMF3,
        MessageType.SHARED_OBJECT_AMF3,
        MessageType.COMMAND_AMF3,
        MessageType.DATA_AMF0,
        MessageType.SHARED_OBJECT_AMF0,
        MessageType.COMMAND_AMF0,
    }
)
EXTENDED_TIMESTAMP = 0xFFFFFF  # a 3-byte timestamp of this value: 4 bytes follow
_HEADER_SIZES = {ChunkFormat.FULL: 11, ChunkFormat.SAME_STREAM: 7, ChunkFormat.TIMESTAMP_DELTA: 3}

Read = Callable[[int], Awaitable[bytes]]


class ChunkState:
    """One chunk stream's last header values and the message being reassembled."""

    __slots__ = ("buffer", "delta", "extended", "length", "stream_id", "timestamp", "type_id")

    def __init__(self) -> None:
        self.timestamp = 0
        self.delta = 0
        self.length = 0
        self.type_id = 0
        self.stream_id = 0
        self.buffer = bytearray()
        self.extended = False

    def complete(self) -> bytes | None:
        """The message's payload once all its chunks arrived (the buffer starts over), else None."""
        if len(self.buffer) < self.length:
            return None
        payload = bytes(self.buffer[: self.length])
        self.buffer.clear()
        return payload


class ChunkReader:
    """Reads chunks with ``read`` (exactly n bytes) and reassembles them per chunk stream."""

    def __init__(self, read: Read, *, max_message: int = 16 * 1024 * 1024, max_command: int = 64 * 1024) -> None:
        self.read = read
        self.chunk_size = DEFAULT_CHUNK_SIZE  # the peer's (incoming) chunk size
        self.streams: dict[int, ChunkState] = {}
        self.max_message = max_message  # the longest message (and all unfinished ones together) accepted
        self.max_command = max_command  # the longest AMF command / data / shared object message accepted

    async def read_chunk(self) -> tuple[int, ChunkState]:
        """One chunk: its chunk stream id and that stream's state, its payload appended."""
        first = (await self.read(1))[0]
        fmt = first >> 6
        csid = first & 0x3F
        if csid == 0:  # 2-byte basic header
            csid = 64 + (await self.read(1))[0]
        elif csid == 1:  # 3-byte basic header
            b = await self.read(2)
            csid = 64 + b[0] + b[1] * 256
        state = self.streams.get(csid)
        if state is None:
            if fmt != ChunkFormat.FULL:
                raise RtmpError("chunk stream starts without a full header")
            if len(self.streams) >= MAX_CHUNK_STREAMS:
                raise RtmpError(f"more than {MAX_CHUNK_STREAMS} chunk streams")
            state = self.streams[csid] = ChunkState()
        new_message = not state.buffer
        if fmt != ChunkFormat.CONTINUATION:
            h = await self.read(_HEADER_SIZES[ChunkFormat(fmt)])
            ts = int.from_bytes(h[0:3], "big")
            if fmt in (ChunkFormat.FULL, ChunkFormat.SAME_STREAM):
                state.length = int.from_bytes(h[3:6], "big")
                state.type_id = h[6]
                self._check_length(state)
            if fmt == ChunkFormat.FULL:
                state.stream_id = struct.unpack("<I", h[7:11])[0]
            state.extended = ts == EXTENDED_TIMESTAMP
            if state.extended:
                ts = struct.unpack(">I", await self.read(4))[0]
            if fmt == ChunkFormat.FULL:
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
        need = min(self.chunk_size, state.length - len(state.buffer))
        if need > 0 and sum(len(s.buffer) for s in self.streams.values()) + need > self.max_message:
            raise RtmpError(f"unfinished messages exceed {self.max_message} bytes")
        state.buffer += await self.read(need)
        return csid, state

    def _check_length(self, state: ChunkState) -> None:
        """Refuse a message announced longer than the limits, before reading any of it."""
        limit = self.max_command if state.type_id in _AMF_TYPES else self.max_message
        if state.length > limit:
            kind = "AMF message" if state.type_id in _AMF_TYPES else "message"
            raise RtmpError(f"{kind} of {state.length} bytes (type {state.type_id}) exceeds {limit}")


def encode_message(
    csid: int, type_id: int, stream_id: int, payload: bytes, *, chunk_size: int, timestamp: int = 0
) -> bytes:
    """One message as chunks: a full (format 0) header, then a continuation header per ``chunk_size`` bytes.

    ``csid`` must be below 64 (a 1-byte basic header); the timestamp is clamped to 3 bytes.
    """
    header = bytes([csid & 0x3F]) + min(timestamp, EXTENDED_TIMESTAMP).to_bytes(3, "big")
    header += len(payload).to_bytes(3, "big") + bytes([type_id]) + struct.pack("<I", stream_id)
    out = bytearray(header)
    for offset in range(0, len(payload), chunk_size):
        if offset:
            out.append(ChunkFormat.CONTINUATION << 6 | (csid & 0x3F))
        out += payload[offset : offset + chunk_size]
    return bytes(out)


# --- protocol control message payloads -------------------------------------


def set_chunk_size(size: int) -> bytes:
    """The payload of :attr:`MessageType.SET_CHUNK_SIZE`."""
    return struct.pack(">I", size)


def parse_set_chunk_size(payload: bytes) -> int:
    """The chunk size a Set Chunk Size announces (its top bit is reserved)."""
    return int(struct.unpack(">I", payload[:4])[0]) & 0x7FFFFFFF


def acknowledgement(received: int) -> bytes:
    """The payload of :attr:`MessageType.ACK`: the bytes received so far (mod 2**32)."""
    return struct.pack(">I", received & 0xFFFFFFFF)


def window_ack_size(size: int) -> bytes:
    """The payload of :attr:`MessageType.WINDOW_ACK_SIZE`."""
    return struct.pack(">I", size)


def parse_window_ack_size(payload: bytes) -> int:
    """The window a Window Acknowledgement Size announces."""
    return int(struct.unpack(">I", payload[:4])[0])


def set_peer_bandwidth(size: int, limit: PeerBandwidthLimit) -> bytes:
    """The payload of :attr:`MessageType.SET_PEER_BANDWIDTH`."""
    return struct.pack(">IB", size, limit)


def user_control(event: UserControlEvent, stream_id: int) -> bytes:
    """The payload of a :attr:`MessageType.USER_CONTROL` event that takes a stream id."""
    return struct.pack(">HI", event, stream_id)
