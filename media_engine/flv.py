"""FLV/AVC bitstream helpers shared by RTMP ingest and HTTP-FLV out.

H.264 travels inside the engine as Annex-B access units (what RTP carries);
FLV and RTMP carry AVCC (length-prefixed NAL units) plus one
AVCDecoderConfigurationRecord (the "sequence header"). AAC in FLV is raw
frames plus one AudioSpecificConfig.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

FLV_HEADER = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00"  # audio + video, then PreviousTagSize0
TAG_AUDIO = 8
TAG_VIDEO = 9
TAG_SCRIPT = 18


@dataclass(frozen=True)
class AvcConfig:
    sps: tuple[bytes, ...]
    pps: tuple[bytes, ...]
    length_size: int = 4

    def annexb_parameter_sets(self) -> bytes:
        return b"".join(b"\x00\x00\x00\x01" + unit for unit in (*self.sps, *self.pps))

    def record(self) -> bytes:
        """The AVCDecoderConfigurationRecord (ISO 14496-15 5.2.4.1)."""
        sps0 = self.sps[0]
        out = bytearray([1, sps0[1], sps0[2], sps0[3], 0xFC | (self.length_size - 1), 0xE0 | len(self.sps)])
        for unit in self.sps:
            out += struct.pack(">H", len(unit)) + unit
        out.append(len(self.pps))
        for unit in self.pps:
            out += struct.pack(">H", len(unit)) + unit
        return bytes(out)


def parse_avc_config(data: bytes) -> AvcConfig:
    length_size = (data[4] & 0x03) + 1
    count = data[5] & 0x1F
    i = 6
    sps = []
    for _ in range(count):
        (size,) = struct.unpack_from(">H", data, i)
        sps.append(data[i + 2 : i + 2 + size])
        i += 2 + size
    count = data[i]
    i += 1
    pps = []
    for _ in range(count):
        (size,) = struct.unpack_from(">H", data, i)
        pps.append(data[i + 2 : i + 2 + size])
        i += 2 + size
    return AvcConfig(tuple(sps), tuple(pps), length_size)


def avcc_to_annexb(data: bytes, length_size: int = 4) -> list[bytes]:
    """NAL units of an AVCC sample."""
    units = []
    i = 0
    while i + length_size <= len(data):
        size = int.from_bytes(data[i : i + length_size], "big")
        i += length_size
        units.append(data[i : i + size])
        i += size
    return units


def annexb_units(data: bytes) -> list[bytes]:
    """NAL units of an Annex-B access unit (3- or 4-byte start codes)."""
    units = []
    starts = []
    i = 0
    while True:
        j = data.find(b"\x00\x00\x01", i)
        if j < 0:
            break
        starts.append(j + 3)
        i = j + 3
    for index, start in enumerate(starts):
        end = starts[index + 1] - 3 if index + 1 < len(starts) else len(data)
        unit = data[start:end]
        if index + 1 < len(starts):
            unit = unit.rstrip(b"\x00") if unit.endswith(b"\x00") else unit
        if unit:
            units.append(unit)
    return units


def annexb(units: list[bytes]) -> bytes:
    return b"".join(b"\x00\x00\x00\x01" + unit for unit in units)


def avcc(units: list[bytes]) -> bytes:
    return b"".join(struct.pack(">I", len(unit)) + unit for unit in units)


def flv_tag(tag_type: int, timestamp_ms: int, body: bytes) -> bytes:
    """One FLV tag followed by its PreviousTagSize."""
    ts = timestamp_ms & 0xFFFFFFFF
    header = struct.pack(">BI", tag_type, len(body))[0:1] + len(body).to_bytes(3, "big")
    header += (ts & 0xFFFFFF).to_bytes(3, "big") + bytes([ts >> 24]) + b"\x00\x00\x00"
    return header + body + struct.pack(">I", 11 + len(body))


def video_tag_body(keyframe: bool, packet_type: int, payload: bytes, cts: int = 0) -> bytes:
    return bytes([(0x10 if keyframe else 0x20) | 7, packet_type]) + cts.to_bytes(3, "big", signed=True) + payload


def aac_tag_body(packet_type: int, payload: bytes) -> bytes:
    # AAC, 44 kHz flag (always 3 for AAC), 16-bit, stereo.
    return bytes([0xAF, packet_type]) + payload
