from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import connection
from django.db.models import F

from apps.accounts.models import User
from hub.sqlutil import as_datetime, as_json

from .models import Conversation, Member, Message
from .services import message_view

PAGE_MAX = 200


_AFTER_SQL = (
    "SELECT seq, sender_id, kind, body, client_msg_id, created_at, recalled_at FROM im_message"
    " WHERE conversation_id = %s AND seq > %s ORDER BY seq LIMIT %s"
)


def messages_after(*, conversation_id: int, after_seq: int, limit: int = 100) -> dict[str, Any]:
    """Exactly the messages with seq > after_seq, in order, one page at a time.

    Written in SQL: every reconnecting client calls it (resume)."""
    limit = max(1, min(limit, PAGE_MAX))
    with connection.cursor() as cursor:
        cursor.execute(_AFTER_SQL, [conversation_id, after_seq, limit + 1])
        rows = cursor.fetchall()
    items = []
    for seq, sender_id, kind, body, cmid, created_at, recalled_at in rows[:limit]:
        recalled = recalled_at is not None
        created = as_datetime(created_at)
        items.append(
            {
                "conversation": conversation_id,
                "seq": seq,
                "sender": sender_id,
                "kind": kind,
                "body": {} if recalled else as_json(body),
                "client_msg_id": cmid,
                "created_at": created.isoformat() if created else None,
                "recalled": recalled,
            }
        )
    return {"items": items, "has_more": len(rows) > limit}


def messages_before(*, conversation_id: int, before_seq: int | None, limit: int = 50) -> dict[str, Any]:
    """History, newest page first (for scrolling back); items ascending."""
    limit = max(1, min(limit, PAGE_MAX))
    qs = Message.objects.filter(conversation_id=conversation_id)
    if before_seq is not None:
        qs = qs.filter(seq__lt=before_seq)
    rows = list(qs.order_by("-seq")[: limit + 1])
    page = rows[:limit]
    page.reverse()
    return {"items": [message_view(m) for m in page], "has_more": len(rows) > limit}


def conversations_of(*, user: User, before: dt.datetime | None = None, limit: int = 30) -> dict[str, Any]:
    """The user's conversations, most recent activity first, with unread counts."""
    limit = max(1, min(limit, 100))
    members = (
        Member.objects.filter(user=user, left_at__isnull=True)
        .select_related("conversation")
        .annotate(activity=F("conversation__last_message_at"))
        .order_by(F("conversation__last_message_at").desc(nulls_last=True), "-conversation_id")
    )
    if before is not None:
        members = members.filter(conversation__last_message_at__lt=before)
    rows = list(members[: limit + 1])
    items = []
    for m in rows[:limit]:
        conv: Conversation = m.conversation
        last = Message.objects.filter(conversation=conv).order_by("-seq").first()
        items.append(
            {
                "id": conv.pk,
                "kind": conv.kind,
                "kind_label": Conversation.Kind(conv.kind).label,
                "title": conv.title,
                "last_seq": conv.last_seq,
                "read_seq": m.read_seq,
                "delivered_seq": m.delivered_seq,
                "unread": max(0, conv.last_seq - m.read_seq),
                "last_message": message_view(last) if last else None,
                "last_message_at": conv.last_message_at,
                "closed": conv.closed_at is not None,
            }
        )
    next_cursor = rows[limit - 1].conversation.last_message_at if len(rows) > limit else None
    return {"items": items, "next_before": next_cursor}


def members_of(conversation_id: int) -> list[dict[str, Any]]:
    return [
        {
            "user": m.user_id,
            "display_name": m.user.display_name,
            "role": m.role,
            "delivered_seq": m.delivered_seq,
            "read_seq": m.read_seq,
        }
        for m in Member.objects.filter(conversation_id=conversation_id, left_at__isnull=True).select_related("user")
    ]


def is_member(user: Any, conversation_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM im_member WHERE conversation_id = %s AND user_id = %s AND left_at IS NULL",
            [conversation_id, user.pk],
        )
        return cursor.fetchone() is not None
