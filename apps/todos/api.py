"""/api/v1/todos: the signed-in user's to-dos from every module (registry.py)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router

from hub.errors import errors

from .registry import todos_for
from .schemas import TodoListOut

router = Router()


@router.get("", response={200: TodoListOut, **errors()}, summary="我的待办（各模块汇总）")
def todo_list(request: HttpRequest) -> dict[str, Any]:
    items, partial = todos_for(request.auth)  # type: ignore[attr-defined]
    return {
        "items": [
            {
                "kind": t.kind,
                "title": t.title,
                "count": t.count,
                "detail": t.detail,
                "urgent": t.urgent,
                "due_at": t.due_at,
                "page": t.page,
                "route": t.route,
                "query": t.query,
            }
            for t in items
        ],
        "total": sum(t.count for t in items),
        "partial": partial,
    }
