"""Psych to-dos for the home page and the workbench (apps.todos registry).

Patient: scales to fill for themselves and their family (overdue ones urgent).
Doctor: open or escalated alerts (urgent; due at the acknowledgement deadline)
and submitted results of their assignments still waiting for a signed review."""

from __future__ import annotations

from django.db.models import Min
from django.utils import timezone

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.todos.registry import Todo

from . import selectors
from .models import Alert, Assignment, Result


def _when(value: object) -> str:
    return timezone.localtime(value).strftime("%m月%d日 %H:%M") if value else ""  # type: ignore[arg-type]


def psych_todos(user: User) -> list[Todo]:
    if user.role == Role.PATIENT:
        open_ = selectors.assignments_query(user).filter(
            status__in=[Assignment.Status.ASSIGNED, Assignment.Status.IN_PROGRESS]
        )
        rows = list(open_.values_list("scale__code", "due_at"))
        if not rows:
            return []
        now = timezone.now()
        due = min(d for _, d in rows)
        names = sorted({c for c, _ in rows})
        overdue = sum(1 for _, d in rows if d < now)
        head = "、".join(names[:2]) + (f" 等 {len(rows)} 项" if len(rows) > 2 else "")
        detail = f"{head}，已逾期 {overdue} 项" if overdue else f"{head}，{_when(due)} 前完成"
        return [
            Todo(
                kind="psych.scales_to_fill",
                title="待填写的心理量表",
                count=len(rows),
                detail=detail,
                urgent=overdue > 0,
                due_at=due,
                page="/pages/psych/list",
            )
        ]
    if user.role == Role.DOCTOR:
        out: list[Todo] = []
        alerts = selectors.alerts_query(user, status="active").order_by()
        agg = alerts.aggregate(deadline=Min("ack_deadline"))
        n_alerts = alerts.count()
        if n_alerts:
            escalated = alerts.filter(status=Alert.Status.ESCALATED).count()
            out.append(
                Todo(
                    kind="psych.alerts",
                    title="待处理的心理预警",
                    count=n_alerts,
                    detail=(f"其中 {escalated} 条已升级，" if escalated else "")
                    + f"最早须在 {_when(agg['deadline'])} 前确认",
                    urgent=True,
                    due_at=agg["deadline"],
                    route="psych-alerts",
                )
            )
        unsigned = Result.objects.filter(assignment__assigned_by=user, review__isnull=True)
        n_unsigned = unsigned.count()
        if n_unsigned:
            out.append(
                Todo(
                    kind="psych.reports_to_sign",
                    title="待签名的测评报告",
                    count=n_unsigned,
                    detail="患者已提交，请查看并签署解读意见",
                    route="psych",
                )
            )
        return out
    return []
