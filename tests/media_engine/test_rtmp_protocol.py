"""RTMP encodings without a socket: AMF0 round trips and chunk stream reassembly."""

from __future__ import annotations

import asyncio
import struct

import pytest

from media_engine.amf0 import UNDEFINED, Amf0Error, Amf0Marker, amf0_decode, amf0_encode
from media_engine.rtmp_chunks import (
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

# --- AMF0 ------------------------------------------------------------------


@pytest.mark.parametrize("number", [0, 1, -1, 2_500_000, 0.5, -1234.25, 1e300])
def test_amf0_numbers_round_trip_as_floats(number: float) -> None:
    encoded = amf0_encode(number)
    assert encoded == bytes([Amf0Marker.NUMBER]) + struct.pack(">d", float(number))
    assert amf0_decode(encoded) == [float(number)]


def test_amf0_booleans_are_not_numbers() -> None:
    assert amf0_encode(True, False) == b"\x01\x01\x01\x00"
    assert amf0_decode(amf0_encode(True, False)) == [True, False]


@pytest.mark.parametrize("text", ["", "connect", "live/room-1?grant=abc.def", "授权凭证无效"])
def test_amf0_strings_round_trip(text: str) -> None:
    raw = text.encode()
    assert amf0_encode(text) == b"\x02" + struct.pack(">H", len(raw)) + raw
    assert amf0_decode(amf0_encode(text)) == [text]


def test_amf0_long_string_decodes() -> None:
    raw = "x" * 70_000
    assert amf0_decode(b"\x0c" + struct.pack(">I", len(raw)) + raw.encode()) == [raw]


def test_amf0_null_and_undefined_encode_apart_and_decode_as_none() -> None:
    assert amf0_encode(None, UNDEFINED) == b"\x05\x06"
    assert amf0_decode(b"\x05\x06") == [None, None]


def test_amf0_objects_round_trip_nested() -> None:
    obj = {
        "level": "status",
        "code": "NetConnection.Connect.Success",
        "objectEncoding": 0,
        "nested": {"ok": True, "empty": {}},
        "nothing": None,
    }
    encoded = amf0_encode(obj)
    assert encoded[0] == Amf0Marker.OBJECT
    assert encoded.endswith(b"\x00\x00\x09")
    assert amf0_decode(encoded) == [{**obj, "objectEncoding": 0.0}]


def test_amf0_command_sequence_round_trips() -> None:
    values = ["_result", 1, {"fmsVer": "FMS/3,0,1,123", "capabilities": 31}, None, "end"]
    assert amf0_decode(amf0_encode(*values)) == [
        "_result",
        1.0,
        {"fmsVer": "FMS/3,0,1,123", "capabilities": 31.0},
        None,
        "end",
    ]


def test_amf0_ecma_array_decodes_as_dict() -> None:
    # onMetaData as ffmpeg sends it: a string, then an ECMA array (count, then object entries).
    entries = amf0_encode({"videocodecid": 7, "audiocodecid": 10, "encoder": "Lavf"})[1:]
    data = amf0_encode("onMetaData") + bytes([Amf0Marker.ECMA_ARRAY]) + struct.pack(">I", 3) + entries
    assert amf0_decode(data) == ["onMetaData", {"videocodecid": 7.0, "audiocodecid": 10.0, "encoder": "Lavf"}]


def test_amf0_strict_array_decodes_as_list() -> None:
    data = bytes([Amf0Marker.STRICT_ARRAY]) + struct.pack(">I", 3) + amf0_encode(1, "two", None)
    assert amf0_decode(data) == [[1.0, "two", None]]


def test_amf0_unsupported_marker_and_type() -> None:
    with pytest.raises(Amf0Error, match="marker 17"):
        amf0_decode(b"\x11")
    with pytest.raises(TypeError):
        amf0_encode(b"bytes")


# --- chunk stream ----------------------------------------------------------


def reader_for(data: bytes) -> ChunkReader:
    stream = asyncio.StreamReader()
    stream.feed_data(data)
    stream.feed_eof()
    return ChunkReader(stream.readexactly)


async def messages(reader: ChunkReader, count: int) -> list[tuple[int, int, int, int, bytes]]:
    """(csid, type, stream, timestamp, payload) of the next ``count`` whole messages; Set Chunk Size applied."""
    out = []
    while len(out) < count:
        csid, state = await reader.read_chunk()
        payload = state.complete()
        if payload is None:
            continue
        if state.type_id == MessageType.SET_CHUNK_SIZE:
            reader.chunk_size = parse_set_chunk_size(payload)
        out.append((csid, state.type_id, state.stream_id, state.timestamp, payload))
    return out


async def test_message_split_over_chunks_reassembles_across_a_chunk_size_change() -> None:
    first = bytes(range(256)) + bytes(44)  # 300 bytes: 128 + 128 + 44 at the default chunk size
    second = bytes(i % 251 for i in range(250))  # 250 bytes: 100 + 100 + 50 after Set Chunk Size 100
    data = bytearray()
    # csid 6, format 0: timestamp 1000, length 300, video, message stream 1; then two format 3 chunks.
    data += b"\x06" + (1000).to_bytes(3, "big") + (300).to_bytes(3, "big") + b"\x09" + struct.pack("<I", 1)
    data += first[:128] + b"\xc6" + first[128:256] + b"\xc6" + first[256:]
    data += encode_message(
        ChunkStreamId.PROTOCOL_CONTROL, MessageType.SET_CHUNK_SIZE, 0, set_chunk_size(100), chunk_size=128
    )
    # csid 6, format 1: timestamp delta 40, length 250, video; then format 3 continuation chunks.
    data += b"\x46" + (40).to_bytes(3, "big") + (250).to_bytes(3, "big") + b"\x09"
    data += second[:100] + b"\xc6" + second[100:200] + b"\xc6" + second[200:]
    # csid 6, format 3 starting a new message: same length, type and delta (timestamp 1080).
    data += b"\xc6" + second[:100] + b"\xc6" + second[100:200] + b"\xc6" + second[200:]
    reader = reader_for(bytes(data))
    got = await messages(reader, 4)
    assert got == [
        (6, MessageType.VIDEO, 1, 1000, first),
        (2, MessageType.SET_CHUNK_SIZE, 0, 0, struct.pack(">I", 100)),
        (6, MessageType.VIDEO, 1, 1040, second),
        (6, MessageType.VIDEO, 1, 1080, second),
    ]
    assert reader.chunk_size == 100
    with pytest.raises(asyncio.IncompleteReadError):
        await reader.read_chunk()


async def test_interleaved_chunk_streams_and_extended_timestamp() -> None:
    audio, video = b"a" * 150, b"v" * 200
    data = bytearray()
    # csid 4 audio with an extended timestamp (0x01000000), csid 70 (2-byte basic header) video.
    data += (
        b"\x04"
        + b"\xff\xff\xff"
        + (150).to_bytes(3, "big")
        + b"\x08"
        + struct.pack("<I", 1)
        + struct.pack(">I", 1 << 24)
    )
    data += audio[:128]
    data += (
        b"\x00\x06" + (5).to_bytes(3, "big") + (200).to_bytes(3, "big") + b"\x09" + struct.pack("<I", 1) + video[:128]
    )
    data += b"\xc4" + struct.pack(">I", 1 << 24) + audio[128:]  # format 3 repeats the extended timestamp
    data += b"\xc0\x06" + video[128:]
    got = await messages(reader_for(bytes(data)), 2)
    assert got == [(4, MessageType.AUDIO, 1, 1 << 24, audio), (70, MessageType.VIDEO, 1, 5, video)]


async def test_chunk_stream_must_start_with_a_full_header() -> None:
    with pytest.raises(RtmpError, match="full header"):
        await reader_for(b"\x43" + bytes(7)).read_chunk()


async def test_encode_message_splits_at_the_chunk_size_and_reads_back() -> None:
    payload = bytes(range(256)) * 40  # 10240 bytes: 4096 + 4096 + 2048
    encoded = encode_message(
        ChunkStreamId.STREAM_COMMAND, MessageType.COMMAND_AMF0, 1, payload, chunk_size=4096, timestamp=7
    )
    assert len(encoded) == 12 + len(payload) + 2
    assert encoded[0] == ChunkStreamId.STREAM_COMMAND
    assert encoded[12 + 4096] == 0xC5
    reader = reader_for(encoded)
    reader.chunk_size = 4096
    assert await messages(reader, 1) == [(5, MessageType.COMMAND_AMF0, 1, 7, payload)]


def test_encode_message_clamps_the_timestamp_to_three_bytes() -> None:
    encoded = encode_message(3, MessageType.COMMAND_AMF0, 0, b"", chunk_size=128, timestamp=1 << 30)
    assert encoded == b"\x03\xff\xff\xff\x00\x00\x00\x14\x00\x00\x00\x00"


def test_protocol_control_payloads() -> None:
    assert set_chunk_size(4096) == b"\x00\x00\x10\x00"
    assert parse_set_chunk_size(b"\x80\x00\x10\x00") == 4096  # the reserved top bit is dropped
    assert window_ack_size(2_500_000) == struct.pack(">I", 2_500_000)
    assert parse_window_ack_size(window_ack_size(2_500_000)) == 2_500_000
    assert acknowledgement((1 << 32) + 5) == b"\x00\x00\x00\x05"
    assert set_peer_bandwidth(2_500_000, PeerBandwidthLimit.DYNAMIC) == struct.pack(">IB", 2_500_000, 2)
    assert user_control(UserControlEvent.STREAM_BEGIN, 1) == b"\x00\x00\x00\x00\x00\x01"
