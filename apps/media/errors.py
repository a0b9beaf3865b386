"""Error codes of audio/video rooms (REST, socket, WHIP/WHEP): each code's status and
default message, one error type.

Refusals of the media node (``{"ok": False, "code", "message"}`` from
``media_engine``) reach clients through :meth:`MediaError.from_node`: 409 with
the node's code and message whatever the code (the node may answer with a
``grant.*`` code or one this table does not know yet: never a 500); a node
that does not answer is ``media.node_unavailable`` (503)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from hub.errors import ApiError, ErrorSpec


class MediaCode(StrEnum):
    NODE_UNAVAILABLE = "media.node_unavailable"  # the node did not answer in time
    ALREADY_RECORDING = "media.already_recording"
    NOT_RECORDING = "media.not_recording"
    NO_PUBLISHER = "media.no_publisher"  # nothing to play yet
    RECORDING_EMPTY = "media.recording_empty"  # stopped before any audio or video arrived: nothing kept
    NO_TRACKS = "media.no_tracks"
    BAD_OFFER = "media.bad_offer"  # WHIP/WHEP answer 400 (413 for an oversized offer)
    BAD_CONTENT_TYPE = "media.bad_content_type"
    NO_TRICKLE = "media.no_trickle"  # aiortc has no trickle ICE: WHIP PATCH
    PUBLISH_FORBIDDEN = "media.publish_forbidden"  # observers only play
    RECORDING_CONSENT_MISSING = "media.recording_consent_missing"  # a patient has not agreed to recording
    PASS_INVALID = "media.pass_invalid"  # a web-view room pass unknown, used, expired or ended
    ROOM_CLOSED = "media.room_closed"  # the node: the room was closed (session ended), old grants refused


ERRORS: dict[str, ErrorSpec] = {
    MediaCode.NODE_UNAVAILABLE: ErrorSpec(503, "媒体服务暂不可用，请稍后重试"),
    MediaCode.ALREADY_RECORDING: ErrorSpec(409, "该房间已在录制"),
    MediaCode.NOT_RECORDING: ErrorSpec(409, "该房间未在录制"),
    MediaCode.NO_PUBLISHER: ErrorSpec(409, "对方尚未开始推流"),
    MediaCode.RECORDING_EMPTY: ErrorSpec(409, "录制期间没有收到音视频，未生成录像"),
    MediaCode.NO_TRACKS: ErrorSpec(409, "请求中没有音视频轨道"),
    MediaCode.BAD_OFFER: ErrorSpec(409, "无法处理该请求"),
    MediaCode.BAD_CONTENT_TYPE: ErrorSpec(415, "请求内容须为 application/sdp"),
    MediaCode.NO_TRICKLE: ErrorSpec(405, "不支持增量 ICE"),
    MediaCode.PUBLISH_FORBIDDEN: ErrorSpec(403, "旁听成员只能观看，不能推流"),
    MediaCode.RECORDING_CONSENT_MISSING: ErrorSpec(
        409, "患者尚未同意音视频录制，不能开始录制：请患者在视频问诊页面同意录制后再试"
    ),
    MediaCode.PASS_INVALID: ErrorSpec(403, "视频入口已失效，请回到小程序重新进入视频问诊"),
    MediaCode.ROOM_CLOSED: ErrorSpec(409, "本次问诊已结束，视频已关闭"),
}

NODE_REFUSAL_STATUS = 409


class MediaError(ApiError):
    codes = MediaCode
    table = ERRORS

    @classmethod
    def from_node(cls, result: Mapping[str, Any]) -> MediaError:
        """A node's refusal as it reaches a client: the node's own code and message, 409."""
        code = str(result.get("code") or "media.refused")
        return cls.unlisted(code, NODE_REFUSAL_STATUS, str(result.get("message") or "媒体服务拒绝了该请求"))
