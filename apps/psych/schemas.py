from __future__ import annotations

import datetime as dt

from ninja import Schema
from pydantic import Field


class AssignIn(Schema):
    patient_id: int
    scale_codes: list[str] = Field(min_length=1, max_length=10)
    # Either a date (due at the end of that day, Asia/Shanghai) or an exact time.
    due_date: dt.date | None = None
    due_at: dt.datetime | None = None
    note: str = Field(default="", max_length=200)


class AnswersIn(Schema):
    # item number (as a string key in JSON) -> option value
    answers: dict[int, int] = Field(max_length=200)


class SubmitIn(Schema):
    answers: dict[int, int] = Field(default_factory=dict, max_length=200)


class NoteIn(Schema):
    note: str = Field(default="", max_length=2000)


class DutyIn(Schema):
    department: str = Field(min_length=1, max_length=64)
    doctor_id: int
    starts_at: dt.datetime
    ends_at: dt.datetime
