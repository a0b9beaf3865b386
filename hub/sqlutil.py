"""Small helpers for the few hot-path reads written in SQL (the socket's
reconnect storm): values come back typed on PostgreSQL and as text on SQLite."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.utils.dateparse import parse_datetime


def as_datetime(value: Any) -> dt.datetime | None:
    """Aware UTC datetimes (SQLite gives naive ones or text, stored in UTC)."""
    if value is None:
        return None
    parsed = value if isinstance(value, dt.datetime) else parse_datetime(str(value))
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


def as_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value
