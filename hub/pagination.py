from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from django.db.models import QuerySet
from ninja import Schema
from pydantic import Field

T = TypeVar("T")

MAX_LIMIT = 100
INT64_MAX = 2**63 - 1  # PostgreSQL bigint: larger numbers are refused here, not by the database


class PageParams(Schema):
    limit: int = Field(20, ge=1, le=MAX_LIMIT)
    offset: int = Field(0, ge=0, le=INT64_MAX)


def page(
    rows: QuerySet[Any] | Sequence[Any], params: PageParams, shape: Callable[[list[Any]], list[dict[str, Any]]]
) -> dict[str, Any]:
    """``{items, count}`` for one page; ``shape`` turns the page's rows into dicts."""
    count = rows.count() if isinstance(rows, QuerySet) else len(rows)
    chunk = list(rows[params.offset : params.offset + params.limit])
    return {"items": shape(chunk), "count": count}
