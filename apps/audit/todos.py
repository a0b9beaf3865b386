"""The auditor's to-do (apps.todos registry): anomalies of the last 24 hours,
i.e. refused and failed actions (wrong passwords, lockouts, access denied), with
lockouts and access refusals marked urgent."""

from __future__ import annotations

import datetime as dt

from django.db.models import Q
from django.utils import timezone

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.todos.registry import Todo

from .models import AuditEvent

WINDOW = dt.timedelta(hours=24)


def audit_todos(user: User) -> list[Todo]:
    if user.role != Role.AUDITOR:
        return []
    since = timezone.now() - WINDOW
    rows = AuditEvent.objects.filter(at__gte=since).exclude(result=AuditEvent.Result.OK)
    total = rows.count()
    if not total:
        return []
    serious = rows.filter(Q(action="auth.lockout") | Q(action__endswith="access_denied")).count()
    return [
        Todo(
            kind="audit.anomalies",
            title="近24小时异常事件",
            count=total,
            detail=f"其中锁定或越权访问 {serious} 次" if serious else "登录失败等被拒绝或失败的操作",
            urgent=serious > 0,
            route="audit",
        )
    ]
