"""Pharmacy to-dos (apps.todos registry).

Pharmacist: prescriptions waiting for review (urgent when one expires within
two hours). Doctor: prescriptions a pharmacist rejected, to revise."""

from __future__ import annotations

import datetime as dt

from django.db.models import Min
from django.utils import timezone

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.todos.registry import Todo

from . import selectors

URGENT_BEFORE = dt.timedelta(hours=2)


def _when(value: dt.datetime | None) -> str:
    return timezone.localtime(value).strftime("%m月%d日 %H:%M") if value else ""


def pharmacy_todos(user: User) -> list[Todo]:
    if user.role == Role.PHARMACIST:
        qs = selectors.awaiting_review()
        n = qs.count()
        if not n:
            return []
        agg = qs.aggregate(oldest=Min("submitted_at"), expires=Min("expires_at"))
        urgent = bool(agg["expires"] and agg["expires"] - timezone.now() < URGENT_BEFORE)
        return [
            Todo(
                kind="pharmacy.prescriptions_to_review",
                title="待审核的处方",
                count=n,
                detail=f"最早提交于 {_when(agg['oldest'])}，最早 {_when(agg['expires'])} 失效",
                urgent=urgent,
                due_at=agg["expires"],
                route="pharmacy-review",
            )
        ]
    if user.role == Role.DOCTOR:
        qs = selectors.rejected_of(user)
        n = qs.count()
        if not n:
            return []
        expires = qs.aggregate(expires=Min("expires_at"))["expires"]
        return [
            Todo(
                kind="pharmacy.prescriptions_to_revise",
                title="药师驳回待修改的处方",
                count=n,
                detail="请查看药师意见，修改后重新签名提交",
                due_at=expires,
                route="pharmacy-prescriptions",
                query={"status": "rejected"},
            )
        ]
    return []
