"""IM to-dos (apps.todos registry): conversations with unread messages.

Staff see "未读的患者消息" (the conversations waiting for an answer); patients
see "未读消息". Both link to the conversation list; the patient app also puts
the count on its 消息 tab."""

from __future__ import annotations

from django.db.models import Count, IntegerField, OuterRef, Q, Subquery

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.todos.registry import Todo

from .models import Member, Message


def im_todos(user: User) -> list[Todo]:
    # Messages after the member's read mark that someone else sent (one's own
    # message never counts as unread, whatever the read mark says).
    unread_of = (
        Message.objects.filter(conversation=OuterRef("conversation"), seq__gt=OuterRef("read_seq"))
        .filter(~Q(sender=user) | Q(sender__isnull=True))
        .order_by()
        .values("conversation")
        .annotate(c=Count("*"))
        .values("c")
    )
    rows = list(
        Member.objects.filter(user=user, left_at__isnull=True, conversation__closed_at__isnull=True)
        .annotate(n=Subquery(unread_of, output_field=IntegerField()))
        .filter(n__gt=0)
        .values_list("n", flat=True)
    )
    if not rows:
        return []
    conversations, messages = len(rows), sum(rows)
    patient = user.role == Role.PATIENT
    return [
        Todo(
            kind="im.unread",
            title="未读消息" if patient else "未读的患者消息",
            count=conversations,
            detail=f"{conversations} 个会话共 {messages} 条未读",
            page="/pages/im/list" if patient else "",
            route="" if patient else "im",
        )
    ]
