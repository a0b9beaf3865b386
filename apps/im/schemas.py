"""ninja In/Out schemas of /api/v1/im/. Times are UTC ISO 8601 strings
(``+00:00``), as the socket frames carry them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ninja import Schema
from pydantic import Field


class SendIn(Schema):
    client_msg_id: str = Field(min_length=1, max_length=64)
    kind: str = "text"
    body: dict[str, Any]


class ReadIn(Schema):
    seq: int = Field(ge=0)


class MessageOut(Schema):
    conversation: int
    seq: int
    sender: int | None
    kind: str
    # The kind's payload (text, attachment reference, card, recalled seq); {} once recalled.
    body: dict[str, Any]
    client_msg_id: str
    created_at: str | None
    recalled: bool


class MessagePageOut(Schema):
    items: list[MessageOut]
    has_more: bool


class ConversationOut(Schema):
    id: int
    kind: str
    kind_label: str
    title: str
    last_seq: int
    read_seq: int
    delivered_seq: int
    unread: int
    last_message: MessageOut | None
    last_message_at: dt.datetime | None
    closed: bool


class ConversationListOut(Schema):
    items: list[ConversationOut]
    # Pass as ``before`` for the next page; null on the last page.
    next_before: dt.datetime | None


class MemberOut(Schema):
    user: int
    display_name: str
    role: str
    delivered_seq: int
    read_seq: int


class ConversationDetailOut(Schema):
    id: int
    members: list[MemberOut]


class ReceiptOut(Schema):
    conversation: int
    user: int
    delivered_seq: int
    read_seq: int


class AttachmentOut(Schema):
    id: int
    kind: str
    content_type: str
    size: int
    filename: str
    duration_ms: int | None
