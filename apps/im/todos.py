"""IM to-dos (apps.todos registry): conversations with unread messages.

Staff see "未读的患者消息" (the conversations waiting for an answer); patients
see "未读消息". Both link to the conversation list; the patient app also puts
the count on its 消息 tab."""

from __future__ import annotations

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.todos.registry import Todo

from .models import Member
from .selectors import unread_from_others


def im_todos(user: User) -> list[Todo]:
    rows = list(
        Member.objects.filter(user=user, left_at__isnull=True, conversation__closed_at__isnull=True)
        .annotate(n=unread_from_others(user))
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
