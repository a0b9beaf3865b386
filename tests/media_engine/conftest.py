from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from media_engine import MediaEngine
from media_engine.synthetic import Clip, encode_h264, encode_opus


@pytest.fixture(scope="session")
def video_clip() -> Clip:
    # 1 s GOP at 30 fps: a late joiner lands mid-GOP.
    return encode_h264(width=320, height=240, fps=30, seconds=2.0, bitrate=400_000, gop_frames=30)


@pytest.fixture(scope="session")
def audio_clip() -> Clip:
    return encode_opus(seconds=2.0)


@pytest.fixture
async def engine() -> AsyncIterator[MediaEngine]:
    eng = MediaEngine()
    try:
        yield eng
    finally:
        await eng.close()


@pytest.fixture(scope="session", autouse=True)
def _end_lingering_sessions() -> None:
    """These tests open no database: nothing to end (the root fixture needs one)."""


def nal_units(data: bytes) -> tuple[bytes, ...]:
    """Annex-B access unit -> NAL units without start codes (3- and 4-byte codes compare equal)."""
    units = []
    for chunk in data.split(b"\x00\x00\x01"):
        chunk = chunk.rstrip(b"\x00") if chunk.endswith(b"\x00") else chunk
        if chunk:
            units.append(chunk)
    return tuple(units)


def avcc_units(data: bytes) -> tuple[bytes, ...]:
    """MP4 (AVCC) sample -> NAL units (4-byte big-endian length prefixes)."""
    units, i = [], 0
    while i + 4 <= len(data):
        size = int.from_bytes(data[i : i + 4], "big")
        units.append(data[i + 4 : i + 4 + size])
        i += 4 + size
    return tuple(units)


from tests.support.logcheck import no_logged_exceptions  # noqa: E402, F401  (autouse)
