"""Commerce to-dos (apps.todos registry): refunds waiting for the staff member's approval."""

from __future__ import annotations

from django.db.models import Min

from apps.accounts.models import User
from apps.todos.registry import Todo

from . import selectors


def commerce_todos(user: User) -> list[Todo]:
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
