"""Schemas of the booking side of /api/v1/consultations/ (docs/consultations-api.md).
Names start with ``Consult`` (OpenAPI names are unique across apps)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ninja import Field, Schema


class ConsultDepartmentRef(Schema):
    code: str
    name: str


class ConsultDepartmentOut(Schema):
    code: str
    name: str
    intro: str
    doctor_count: int
    queue_enabled: bool
    queue_waiting: int


class ConsultDoctorOut(Schema):
    id: int
    name: str
    department: ConsultDepartmentRef
    title: str
    title_label: str
    licence_no: str
    years_of_practice: int
    practice_scope: str
    specialties: str
    intro: str
    rating: float | None
    rating_count: int
    price_text_fen: int
    price_video_fen: int
    is_online: bool
    next_slot_at: dt.datetime | None


class ConsultRatingBrief(Schema):
    stars: int
    tags: list[str]
    comment: str
    created_at: dt.datetime


class ConsultDoctorDetailOut(ConsultDoctorOut):
    recent_ratings: list[ConsultRatingBrief]


class ConsultSlotOut(Schema):
    id: int
    kind: str
    kind_label: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    capacity: int
    remaining: int
    status: str


class ConsultPatientBrief(Schema):
    id: int
    name: str
    age: int
    sex_label: str


class ConsultSlotRef(Schema):
    starts_at: dt.datetime
    ends_at: dt.datetime


class ConsultPriorBrief(Schema):
    id: str
    source: str
    source_label: str
    hospital: str
    visit_date: dt.date | None
    icd10_code: str
    diagnosis: str
    review: str
    review_label: str


class ConsultQueueOut(Schema):
    position: int
    ahead: int
    estimated_wait_minutes: int


class ConsultVisitOut(Schema):
    id: str
    patient: ConsultPatientBrief
    doctor: ConsultDoctorOut | None
    department: ConsultDepartmentRef
    kind: str
    kind_label: str
    status: str
    status_label: str
    allowed_actions: list[str]
    price_fen: int
    order_no: str
    slot: ConsultSlotRef | None
    chief_complaint: str
    prior_record: ConsultPriorBrief | None
    guardian_name: str
    queue: ConsultQueueOut | None
    conversation_id: int | None
    room_id: str | None
    session: dict[str, Any] | None
    record_signed: bool
    rated: bool
    reschedule_count: int
    created_at: dt.datetime
    accepted_at: dt.datetime | None
    called_at: dt.datetime | None
    ended_at: dt.datetime | None
    end_reason: str
    end_reason_label: str
    terminate_reason_label: str
    refund_fen: int
    step_up_at: dt.datetime | None


class ConsultBookIn(Schema):
    patient_id: int = Field(ge=1, le=2**63 - 1)
    kind: str = Field(max_length=8)
    doctor_id: int | None = Field(None, ge=1, le=2**63 - 1)
    department: str = Field("", max_length=32)
    slot_id: int | None = Field(None, ge=1, le=2**63 - 1)
    chief_complaint: str = Field(max_length=500)
    prior_record_id: str = Field("", max_length=16)
    guardian_name: str = Field("", max_length=64)
    guardian_relation: str = Field("", max_length=16)
    guardian_phone: str = Field("", max_length=32)
    channel: str = Field("sandbox", max_length=16, description="支付渠道（同 commerce 下单）")


class ConsultRescheduleIn(Schema):
    slot_id: int = Field(ge=1, le=2**63 - 1)


class ConsultOnlineIn(Schema):
    online: bool


class ConsultOnlineOut(Schema):
    is_online: bool


class ConsultStepUpIn(Schema):
    method: str = Field(max_length=8)
    password: str = Field("", max_length=128)
    code: str = Field("", max_length=8)


class ConsultStepUpOut(Schema):
    step_up_at: dt.datetime
    valid_until: dt.datetime


class ConsultAcceptIn(Schema):
    confirm_followup: bool = False


class ConsultTerminateIn(Schema):
    reason: str = Field(max_length=24)
    note: str = Field("", max_length=500)


class ConsultTodayOut(Schema):
    waiting: int
    accepted: int
    in_progress: int
    ended: int


class ConsultBoardOut(Schema):
    waiting: list[ConsultVisitOut]
    in_visit: list[ConsultVisitOut]
    done: list[ConsultVisitOut]


class ConsultWorkbenchOut(Schema):
    today: ConsultTodayOut
    queue: list[ConsultVisitOut]
    board: ConsultBoardOut
    is_online: bool
    doctor_id: int
    departments: list[str]
