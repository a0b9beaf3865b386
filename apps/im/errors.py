"""Error codes of instant messaging (REST and socket frames): each code's status and
default message, one error type."""

from __future__ import annotations

from enum import StrEnum

from hub.errors import ApiError, ErrorSpec


class ImCode(StrEnum):
    NOT_MEMBER = "im.not_member"
    TOO_LONG = "im.too_long"
    ATTACHMENT_INVALID = "im.attachment_invalid"  # not the sender's, not this conversation's, or another kind
    ATTACHMENT_TYPE = "im.attachment_type"
    ATTACHMENT_TOO_LARGE = "im.attachment_too_large"  # detail: max (bytes)
    KIND_FORBIDDEN = "im.kind_forbidden"
    CLIENT_MSG_ID_REUSED = "im.client_msg_id_reused"  # the same id was used in another conversation
    CONVERSATION_CLOSED = "im.conversation_closed"
    ALREADY_RECALLED = "im.already_recalled"
    RECALL_EXPIRED = "im.recall_expired"
    SIGNAL_TOO_LARGE = "im.signal_too_large"


ERRORS: dict[str, ErrorSpec] = {
    ImCode.NOT_MEMBER: ErrorSpec(403, "您不是该会话成员"),
    ImCode.TOO_LONG: ErrorSpec(422, "消息过长"),
    ImCode.ATTACHMENT_INVALID: ErrorSpec(422, "附件不存在或类型不符"),
    ImCode.ATTACHMENT_TYPE: ErrorSpec(415, "不支持的文件类型"),
    ImCode.ATTACHMENT_TOO_LARGE: ErrorSpec(413, "文件过大"),
    ImCode.KIND_FORBIDDEN: ErrorSpec(422, "不支持发送该类型的消息"),
    ImCode.CLIENT_MSG_ID_REUSED: ErrorSpec(409, "消息编号重复"),
    ImCode.CONVERSATION_CLOSED: ErrorSpec(409, "会话已结束"),
    ImCode.ALREADY_RECALLED: ErrorSpec(409, "消息已撤回"),
    ImCode.RECALL_EXPIRED: ErrorSpec(409, "超过2分钟的消息不能撤回"),
    ImCode.SIGNAL_TOO_LARGE: ErrorSpec(413, "信号内容过大"),
}


class ImError(ApiError):
    codes = ImCode
    table = ERRORS
