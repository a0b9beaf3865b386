"""The Out schema owners embed (consultations' ``ConsultSessionOut`` has the same fields)."""

from __future__ import annotations

import datetime as dt

from ninja import Schema


class TimedSessionOut(Schema):
    id: int
    status: str
    status_label: str
    started_at: dt.datetime
    deadline: dt.datetime
    remaining_seconds: int
    server_now: dt.datetime
    extended: bool
    can_extend: bool
    extension_seconds: int
    warnings_sent: list[int]
