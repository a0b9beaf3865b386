"""Error codes of the notification domain (status and default message of each, one error type),
and the adapters' send error."""

from __future__ import annotations

from enum import StrEnum

from hub.errors import ApiError, ErrorSpec


class NotificationCode(StrEnum):
    UNKNOWN_CHANNEL = "notifications.unknown_channel"  # detail: channel
    NO_WECHAT_IDENTITY = "notifications.no_wechat_identity"
    BAD_QUIET_HOURS = "notifications.bad_quiet_hours"


ERRORS: dict[str, ErrorSpec] = {
    NotificationCode.UNKNOWN_CHANNEL: ErrorSpec(422, "不支持的通知渠道"),
    NotificationCode.NO_WECHAT_IDENTITY: ErrorSpec(409, "请在微信小程序中登录后再订阅消息"),
    NotificationCode.BAD_QUIET_HOURS: ErrorSpec(422, "免打扰时段需同时填写开始和结束时间"),
}


class NotificationError(ApiError):
    codes = NotificationCode
    table = ERRORS


class SendError(Exception):
    """What an adapter raises when the gateway did not take the message.

    ``retryable`` False means trying again cannot help (no phone, no grant)."""

    def __init__(self, code: str, message: str, *, retryable: bool = True) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.retryable = retryable
