"""Codec facts the forwarder needs: keyframe detection and codec preferences."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

import av
from aiortc import RTCRtpReceiver
from aiortc.rtcrtpparameters import RTCRtpCodecCapability

if TYPE_CHECKING:
    EncodedPacket: TypeAlias = av.Packet[Any]
else:
    EncodedPacket = av.Packet

# H.264 NAL unit types that start a decodable picture sequence.
_H264_IDR = 5
_H264_SPS = 7


def h264_nal_types(data: bytes) -> list[int]:
    """NAL unit types of an Annex-B access unit (start codes 00 00 01 / 00 00 00 01)."""
    types: list[int] = []
    i = 0
    n = len(data)
    while True:
        i = data.find(b"\x00\x00\x01", i)
        if i < 0 or i + 3 >= n:
            return types
        types.append(data[i + 3] & 0x1F)
        i += 3


def is_keyframe(codec_name: str, data: bytes) -> bool:
    """Whether an encoded frame can start decoding (audio frames always can)."""
    name = codec_name.lower()
    if name == "h264":
        types = h264_nal_types(data)
        return _H264_IDR in types or _H264_SPS in types
    if name == "vp8":
        # VP8 frame tag: bit 0 of the first byte is 0 for a key frame (RFC 6386 9.1).
        return len(data) > 0 and (data[0] & 0x01) == 0
    return True


def video_codec_preferences(*, allow_vp8: bool = True) -> list[RTCRtpCodecCapability]:
    """H.264 constrained baseline first, then baseline, then VP8, with RTX.

    Pass to ``setCodecPreferences`` *before* ``setRemoteDescription``: aiortc
    picks the codecs while applying the remote description.
    """
    caps = RTCRtpReceiver.getCapabilities("video")
    assert caps is not None
    codecs = caps.codecs

    def rank(codec: RTCRtpCodecCapability) -> int:
        name = codec.mimeType.lower()
        if name == "video/h264":
            return 0 if str(codec.parameters.get("profile-level-id", "")).lower() == "42e01f" else 1
        if name == "video/vp8":
            return 2
        return 3  # rtx

    ordered = sorted(codecs, key=rank)
    if not allow_vp8:
        ordered = [c for c in ordered if c.mimeType.lower() != "video/vp8"]
    return ordered


def h264_only_preferences() -> list[RTCRtpCodecCapability]:
    """H.264 (and RTX) only: for peers whose media must pass to RTMP/FLV/MP4 untouched."""
    return video_codec_preferences(allow_vp8=False)
