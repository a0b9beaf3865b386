"""Commerce to-dos (apps.todos registry): refunds waiting for the staff member's approval."""

from __future__ import annotations

from django.conf import settings
from django.db.models import Min

from apps.accounts.models import User
from apps.todos.registry import Todo

from . import selectors
from .models import Receipt


def commerce_todos(user: User) -> list[Todo]:
    return _refunds(user) + _receipts(user)


def _receipts(user: User) -> list[Todo]:
    if user.role not in settings.COMMERCE_STAFF_ROLES:
        return []
    failed = Receipt.objects.filter(status=Receipt.Status.FAILED)
    n = failed.count()
    if not n:
        return []
    return [
        Todo(
            kind="commerce.receipts_failed",
            title="开具失败的电子票据",
            count=n,
            detail=f"共 {n} 张，处理票据平台问题后重新开具",
            due_at=failed.aggregate(at=Min("created_at"))["at"],
            route="commerce-orders",
        )
    ]


def _refunds(user: User) -> list[Todo]:
    qs = selectors.refunds_awaiting(user)
    n = qs.count()
    if not n:
        return []
    oldest = qs.aggregate(at=Min("created_at"))["at"]
    second = qs.filter(status="approved").count()
    detail = f"共 {n} 笔" + (f"，其中 {second} 笔待复核" if second else "")
    return [
        Todo(
            kind="commerce.refunds_to_approve",
            title="待审核的退款申请",
            count=n,
            detail=detail,
            due_at=oldest,
            route="commerce-refunds",
        )
    ]
