from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import connection
from django.db.models import Count, F, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce

from apps.accounts.models import User
from hub.sqlutil import as_datetime

from .models import Conversation, Member, Message, body_field
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
                "body": {} if recalled else body_field().unseal(body),
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


def unread_from_others(user: User) -> Any:
    """For a Member queryset of ``user``: messages after the read mark that someone
    else sent. One's own message is never unread, whatever the read mark says (the
    sender's mark does not move on send, to keep the send path to one UPDATE)."""
    counted = (
        Message.objects.filter(conversation=OuterRef("conversation"), seq__gt=OuterRef("read_seq"))
        .filter(~Q(sender=user) | Q(sender__isnull=True))
        .order_by()
        .values("conversation")
        .annotate(c=Count("*"))
        .values("c")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def title_for(title: str, viewer: User) -> str:
    """A conversation's title as ``viewer`` reads it: titles join the parties with
    " · " ("李医生 · 张伟", "张伟 · 心内科诊疗团队"); the viewer's own name is left out,
    so nobody sees their own name as the chat's title."""
    parts = [p for p in title.split(" · ") if p]
    others = [p for p in parts if p != viewer.display_name]
    return " · ".join(others) if others else title


def conversations_of(*, user: User, before: dt.datetime | None = None, limit: int = 30) -> dict[str, Any]:
    """The user's conversations, most recent activity first, with unread counts."""
    limit = max(1, min(limit, 100))
    members = (
        Member.objects.filter(user=user, left_at__isnull=True)
        .select_related("conversation")
        .annotate(activity=F("conversation__last_message_at"), unread_n=unread_from_others(user))
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
                "title": title_for(conv.title, user),
                "last_seq": conv.last_seq,
                "read_seq": m.read_seq,
                "delivered_seq": m.delivered_seq,
                "unread": m.unread_n,
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
