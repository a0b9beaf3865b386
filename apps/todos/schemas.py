from __future__ import annotations

import datetime as dt

from ninja import Schema


class TodoOut(Schema):
    kind: str
    title: str
    count: int
    detail: str
    urgent: bool
    due_at: dt.datetime | None
    page: str
    route: str
    query: dict[str, str]


class TodoListOut(Schema):
    items: list[TodoOut]
    total: int
    partial: bool
