"""Errors of the notification domain, with stable codes for clients."""

from __future__ import annotations

from hub.errors import ApiError


class NotificationError(ApiError):
    pass


def unknown_channel(channel: str) -> NotificationError:
    return NotificationError(
        "notifications.unknown_channel", "不支持的通知渠道", status=422, detail={"channel": channel}
    )


def no_miniprogram_identity() -> NotificationError:
    return NotificationError("notifications.no_wechat_identity", "请在微信小程序中登录后再订阅消息", status=409)


def bad_quiet_hours() -> NotificationError:
    return NotificationError("notifications.bad_quiet_hours", "免打扰时段需同时填写开始和结束时间", status=422)


class SendError(Exception):
    """What an adapter raises when the gateway did not take the message.

    ``retryable`` False means trying again cannot help (no phone, no grant)."""

    def __init__(self, code: str, message: str, *, retryable: bool = True) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.retryable = retryable
