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


# --- responses ------------------------------------------------------------------------
# Times are UTC (ISO 8601, ``Z``); clients show them in Asia/Shanghai.
# ``band`` is the stable code of the result's band under its norm (``none``,
# ``mild``, ``severe``...); ``band_label`` is its Chinese label for display.
# ``critical`` is always the list of critical items that fired, [] when none.


class PersonOut(Schema):
    id: int
    name: str


class PatientBriefOut(Schema):
    id: int
    name: str
    sex: str
    sex_label: str
    age: int
    relation_label: str


class PatientListOut(Schema):
    items: list[PatientBriefOut]
    count: int


class ScaleBriefOut(Schema):
    code: str
    version: int
    name: str
    short_name: str
    domain: str
    time_frame: str
    item_count: int


class ScaleListOut(Schema):
    items: list[ScaleBriefOut]


class OptionOut(Schema):
    label: str
    value: int


class ScaleItemOut(Schema):
    no: int
    text: str
    options: list[OptionOut]


class ScaleOut(ScaleBriefOut):
    instructions: str
    licence: str
    source: str
    items: list[ScaleItemOut]


class CriticalItemOut(Schema):
    code: str
    item: int
    value: int
    label: str
    action: str


class AssignmentOut(Schema):
    id: int
    batch: str
    patient: PatientBriefOut
    scale: ScaleBriefOut
    status: str
    status_label: str
    overdue: bool
    due_at: dt.datetime
    note: str
    assigned_by: PersonOut
    created_at: dt.datetime
    submitted_at: dt.datetime | None
    answered: int
    result_id: int | None
    # Empty / null until submitted.
    band: str
    band_label: str
    band_severity: int | None
    standard_score: int | None
    critical: list[CriticalItemOut]
    allowed_actions: list[str]


class AssignmentFillingOut(AssignmentOut):
    definition: ScaleOut
    # item number (string key) -> option value saved so far
    answers: dict[str, int]
    next_item: int | None


class AssignmentListOut(Schema):
    items: list[AssignmentOut]
    count: int


class AssignmentsCreatedOut(Schema):
    items: list[AssignmentOut]


class ResultSummaryOut(Schema):
    result_id: int
    assignment_id: int
    submitted_at: dt.datetime
    raw_score: int
    standard_score: int
    band: str
    band_label: str
    band_severity: int
    norm_label: str
    critical: list[CriticalItemOut]


class ReviewOut(Schema):
    note: str
    signed_by: PersonOut
    signed_at: dt.datetime
    signature_valid: bool


class BandOut(Schema):
    code: str
    min: int
    max: int
    label: str
    severity: int


class ReportItemOut(Schema):
    no: int
    text: str
    value: int | None
    answer: str
    # This item is one of the result's critical items.
    critical: bool


class ReportAssignmentOut(Schema):
    id: int
    assigned_by: PersonOut
    created_at: dt.datetime
    due_at: dt.datetime


class AlertRowOut(Schema):
    id: int
    status: str
    status_label: str
    patient: PatientBriefOut
    scale_code: str
    result_id: int
    assignment_id: int
    rule_code: str
    item: int
    value: int
    label: str
    doctor_id: int | None
    escalated_to_id: int | None
    escalated_at: dt.datetime | None
    acknowledged_by_id: int | None
    acknowledged_at: dt.datetime | None
    ack_deadline: dt.datetime
    created_at: dt.datetime


class AlertOut(AlertRowOut):
    allowed_actions: list[str]


class AlertListOut(Schema):
    items: list[AlertOut]
    count: int


class AlertEventOut(Schema):
    action: str
    action_label: str
    actor: str
    at: dt.datetime
    note: str


class AlertDetailOut(AlertOut):
    events: list[AlertEventOut]


class ReportOut(Schema):
    """The patient version (``kind: patient``) or, for doctors, the clinical
    version (``kind: clinical``), which adds the fields below ``kind``; they
    are absent from the patient version."""

    result_id: int
    assignment_id: int
    patient: PatientBriefOut
    scale: ScaleBriefOut
    submitted_at: dt.datetime
    raw_score: int
    standard_score: int
    uses_standard_score: bool
    score_range: list[int]
    band: str
    band_label: str
    band_severity: int
    advice: str
    norm_label: str
    flags: list[str]
    critical: list[CriticalItemOut]
    needs_help: bool
    help_text: str
    disclaimer: str
    review: ReviewOut | None
    trend: list[ResultSummaryOut]
    kind: str
    assignment: ReportAssignmentOut | None = None
    scale_version: int | None = None
    time_frame: str | None = None
    rounding: str | None = None
    rounding_label: str | None = None
    multiplier: str | None = None
    items: list[ReportItemOut] | None = None
    bands: list[BandOut] | None = None
    alerts: list[AlertRowOut] | None = None
    licence: str | None = None


class DutyOut(Schema):
    id: int
    department: str
    doctor: PersonOut
    starts_at: dt.datetime
    ends_at: dt.datetime


class DutyListOut(Schema):
    items: list[DutyOut]
