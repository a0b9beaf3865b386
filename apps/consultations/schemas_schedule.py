"""Schemas of the doctor's schedule routes (``api.py`` "the doctor's schedule")."""

from __future__ import annotations

import datetime as dt

from ninja import Schema

from .schemas import ConsultSlotOut


class ConsultMySlotOut(ConsultSlotOut):
    booked: int
    status_label: str
    is_past: bool


class ConsultSlotCreateIn(Schema):
    kind: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    capacity: int


class ConsultSlotBatchIn(Schema):
    kind: str
    weekdays: list[int]  # 1 = Monday ... 7 = Sunday
    start_time: dt.time  # Beijing time, e.g. "09:00"
    end_time: dt.time
    capacity: int
    from_date: dt.date
    weeks: int = 1


class ConsultSlotBatchOut(Schema):
    created: int
    slots: list[ConsultMySlotOut]


class ConsultSlotPatchIn(Schema):
    capacity: int
