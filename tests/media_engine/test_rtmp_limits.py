"""RTMP limits before publish, over raw asyncio sockets: a message size cap, the setup and idle
timeouts, connections per IP, and bounded AMF commands; an ffmpeg push still works."""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import time
from collections.abc import Iterator

import pytest

from media_engine import MediaEngine
from media_engine.amf0 import Amf0Error, amf0_decode, amf0_encode
from media_engine.rtmp import HANDSHAKE_SIZE, RTMP_VERSION, RtmpServer
from media_engine.rtmp_chunks import MessageType, encode_message
from tests.media_engine.test_rtmp import authorize, ffmpeg_push, grant, stop

pytestmark = pytest.mark.asyncio

Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def handshake(port: int) -> Conn:
    """C0+C1, read S0+S1+S2, send C2: a connection ready for chunks."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(bytes([RTMP_VERSION]) + os.urandom(HANDSHAKE_SIZE))
    await writer.drain()
    await asyncio.wait_for(reader.readexactly(1 + 2 * HANDSHAKE_SIZE), 5)
    writer.write(os.urandom(HANDSHAKE_SIZE))
    await writer.drain()
    return reader, writer


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> float:
    """Seconds until the server closes the connection (reading and dropping what it sends)."""
    start = time.monotonic()
    async with asyncio.timeout(seconds):
        while True:
            try:
                if not await reader.read(65536):
                    break
            except ConnectionError:
                break
    return time.monotonic() - start


def connect_command() -> bytes:
    return encode_message(3, MessageType.COMMAND_AMF0, 0, amf0_encode("connect", 1, {"app": "live"}), chunk_size=128)


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def logs() -> Iterator[Records]:
    """Warnings and worse logged during the test (pytest's caplog is off: ``-p no:logging``)."""
    handler = Records()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


def warnings(logs: Records) -> list[str]:
    """The RTMP warnings: one line each, no tracebacks anywhere."""
    assert not [r for r in logs.records if r.exc_info], "no tracebacks"
    return [r.getMessage() for r in logs.records if r.name == "media_engine.rtmp" and r.levelno == logging.WARNING]


async def test_a_header_claiming_16_mb_is_refused_at_once(engine: MediaEngine, logs: Records) -> None:
    server = RtmpServer(engine, authorize)
    port = await server.start("127.0.0.1", 0)
    try:
        reader, writer = await handshake(port)
        (session,) = server.sessions
        # A full header on chunk stream 4: 16 MB of video, then the first 128 bytes.
        header = bytes([4]) + (0).to_bytes(3, "big") + (16 * 1024 * 1024 - 1).to_bytes(3, "big")
        writer.write(header + bytes([MessageType.VIDEO]) + struct.pack("<I", 1) + b"\x00" * 128)
        await writer.drain()
        assert await closed_within(reader, 2) < 1.5
        writer.close()
        assert not server.sessions
        # Nothing of the payload was read: the handshake (C0, C1, C2) and the 12-byte header only.
        assert session.bytes_in == 1 + 2 * HANDSHAKE_SIZE + 12
        assert not any(state.buffer for state in session.chunks.streams.values())
    finally:
        await server.close()
    assert any("exceeds 1048576" in m for m in warnings(logs))


async def test_a_connection_that_sends_nothing_after_the_handshake_is_closed(
    engine: MediaEngine, logs: Records
) -> None:
    server = RtmpServer(engine, authorize, idle_timeout=0.5, setup_timeout=5)
    port = await server.start("127.0.0.1", 0)
    try:
        reader, writer = await handshake(port)
        took = await closed_within(reader, 3)
        assert 0.4 < took < 2
        writer.close()
        # A connection that keeps talking but never publishes meets the setup deadline.
        server.limits = server.limits.__class__(idle_timeout=5, setup_timeout=1)
        reader, writer = await handshake(port)
        writer.write(connect_command())
        await writer.drain()
        assert 0.5 < await closed_within(reader, 4) < 3
        writer.close()
    finally:
        await server.close()
    messages = warnings(logs)
    assert any("idle for 0.5 s before publish" in m for m in messages), messages
    assert any("no publish within 1 s" in m for m in messages), messages


async def test_connections_beyond_the_per_ip_limit_are_refused_while_the_first_stay(
    engine: MediaEngine, logs: Records
) -> None:
    server = RtmpServer(engine, authorize, max_per_ip=3, idle_timeout=10)
    port = await server.start("127.0.0.1", 0)
    first = []
    try:
        first = [await handshake(port) for _ in range(3)]
        extra_reader, extra_writer = await asyncio.open_connection("127.0.0.1", port)
        extra_writer.write(bytes([RTMP_VERSION]) + os.urandom(HANDSHAKE_SIZE))
        assert await closed_within(extra_reader, 2) < 1.5
        extra_writer.close()
        assert len(server.sessions) == 3
        # The first ones are still served: each completes connect.
        for reader, writer in first:
            writer.write(connect_command())
            await writer.drain()
            assert await asyncio.wait_for(reader.read(4096), 2)
        # One closes: a new connection fits again.
        first[0][1].close()
        await asyncio.sleep(0.2)
        first[0] = await handshake(port)
        # And the total limit refuses too.
        server.limits = server.limits.__class__(max_per_ip=10, max_connections=3)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await closed_within(reader, 2) < 1.5
        writer.close()
    finally:
        for _, writer in first:
            writer.close()
        await server.close()
    messages = warnings(logs)
    assert any("too many connections from 127.0.0.1" in m for m in messages), messages
    assert any("too many connections in all" in m for m in messages), messages


async def test_an_oversize_amf_command_is_refused_without_stalling(engine: MediaEngine, logs: Records) -> None:
    server = RtmpServer(engine, authorize)
    port = await server.start("127.0.0.1", 0)
    try:
        reader, writer = await handshake(port)
        big = amf0_encode("connect", 1, {"app": "live", "pad": "x" * 60000, "pad2": "y" * 60000})
        writer.write(encode_message(3, MessageType.COMMAND_AMF0, 0, big * 32, chunk_size=128))  # ~4 MiB
        start = time.monotonic()
        other = asyncio.create_task(handshake(port))  # handshakes meanwhile
        _, other_writer = await asyncio.wait_for(other, 2)
        assert time.monotonic() - start < 1
        assert await closed_within(reader, 2) < 1.5
        writer.close()
        other_writer.close()
    finally:
        await server.close()
    assert any("AMF message of" in m and "exceeds 65536" in m for m in warnings(logs))


async def test_amf0_decoding_is_bounded() -> None:
    deep = b"\x0a\x00\x00\x00\x01" * 100 + b"\x05"  # strict arrays nested 100 deep
    with pytest.raises(Amf0Error, match="deeper"):
        amf0_decode(deep)
    with pytest.raises(Amf0Error, match="values"):
        amf0_decode(b"\x05" * 5000)
    with pytest.raises(Amf0Error, match="truncated"):
        amf0_decode(b"\x0a\xff\xff\xff\xff\x05")  # a strict array claiming 4 G items
    with pytest.raises(Amf0Error, match="past the data"):
        amf0_decode(b"\x02\xff\xffabc")


async def test_a_publisher_that_goes_quiet_is_closed(engine: MediaEngine, logs: Records) -> None:
    """A publish is authorised, then nothing more arrives (a stalled phone, a half-open TCP
    connection): the session ends after ``publish_read_timeout`` instead of holding the room."""
    server = RtmpServer(engine, authorize, idle_timeout=5, setup_timeout=5, publish_read_timeout=0.5)
    port = await server.start("127.0.0.1", 0)
    try:
        reader, writer = await handshake(port)
        publish = amf0_encode("publish", 3, None, f"quiet?grant={grant('quiet', 'pusher')}", "live")
        writer.write(
            connect_command()
            + encode_message(3, MessageType.COMMAND_AMF0, 0, amf0_encode("createStream", 2, None), chunk_size=128)
            + encode_message(8, MessageType.COMMAND_AMF0, 1, publish, chunk_size=128)
        )
        await writer.drain()
        for _ in range(50):
            if server.sessions and next(iter(server.sessions)).room_id == "quiet":
                break
            await asyncio.sleep(0.05)
        (session,) = server.sessions
        assert session.peer_id == "pusher"  # admitted: the publish deadline no longer applies
        assert 0.4 < await closed_within(reader, 4) < 3
        writer.close()
        assert not server.sessions
        assert "pusher" not in engine.room("quiet").publishers
    finally:
        await server.close()
    assert any("publisher silent for 0.5 s" in m for m in warnings(logs)), warnings(logs)


async def test_an_ffmpeg_publish_still_works_under_the_limits(engine: MediaEngine) -> None:
    server = RtmpServer(engine, authorize, idle_timeout=2, setup_timeout=5, publish_read_timeout=1)
    port = await server.start("127.0.0.1", 0)
    push = await ffmpeg_push(f"rtmp://127.0.0.1:{port}/live/lim?grant={grant('lim', 'pusher')}", 6)
    try:
        publisher = await engine.room("lim").wait_publisher("pusher", timeout=10)
        assert sorted(publisher.sources) == ["audio", "video"]
        await asyncio.sleep(4)  # past the setup, idle and quiet timeouts: a live publisher is not cut
        assert push.returncode is None
        assert "pusher" in engine.room("lim").publishers
    finally:
        await stop(push)
        await server.close()
