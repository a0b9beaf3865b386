"""Error codes of timed sessions: each code's status and default message, one error type."""

from __future__ import annotations

from enum import StrEnum

from hub.errors import ApiError, ErrorSpec


class TimedCode(StrEnum):
    TRANSITION_REFUSED = "timed.transition_refused"  # e.g. extending an ended session
    ALREADY_EXTENDED = "timed.already_extended"  # the one extension was used
    EXTENSION_NOT_ALLOWED = "timed.extension_not_allowed"  # the product offers no extension
    ALREADY_RUNNING = "timed.already_running"  # the owner already has a running session
    OWNER_UNKNOWN = "timed.owner_unknown"  # detail: kind
    INVALID_DURATION = "timed.invalid_duration"  # detail: field, max
    INVALID_TOPIC = "timed.invalid_topic"  # detail: topic


ERRORS: dict[str, ErrorSpec] = {
    TimedCode.TRANSITION_REFUSED: ErrorSpec(409, "会话已结束，不能执行该操作"),
    TimedCode.ALREADY_EXTENDED: ErrorSpec(409, "本次会话已延长过一次，不能再次延长"),
    TimedCode.EXTENSION_NOT_ALLOWED: ErrorSpec(409, "该服务不支持延长时间"),
    TimedCode.ALREADY_RUNNING: ErrorSpec(409, "该服务已有进行中的限时会话"),
    TimedCode.OWNER_UNKNOWN: ErrorSpec(500, "未登记的会话类型：{kind}"),
    TimedCode.INVALID_DURATION: ErrorSpec(422, "会话时长不正确"),
    TimedCode.INVALID_TOPIC: ErrorSpec(422, "推送主题格式不正确"),
}


class TimedError(ApiError):
    codes = TimedCode
    table = ERRORS
