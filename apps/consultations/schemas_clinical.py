"""Schemas of the clinical routes (``api_clinical.py``): prior records, the visit
record, invitations, ratings, the summary. Names start with ``Consult`` (OpenAPI
names are unique across apps)."""

from __future__ import annotations

import datetime as dt

from ninja import Field, Schema


class ConsultPriorFileOut(Schema):
    id: str
    name: str
    content_type: str
    size: int
    url: str


class ConsultPriorRecordOut(Schema):
    id: str
    source: str
    source_label: str
    hospital: str
    visit_date: dt.date | None
    icd10_code: str
    diagnosis: str
    summary: str
    files: list[ConsultPriorFileOut]
    review: str
    review_label: str
    reviewed_at: dt.datetime | None
    review_note: str
    created_at: dt.datetime


class ConsultPriorReviewIn(Schema):
    decision: str = Field(pattern="^(accepted|rejected)$")
    note: str = Field("", max_length=500)


class ConsultRecordIn(Schema):
    chief_complaint: str = Field("", max_length=4000)
    present_history: str = Field("", max_length=4000)
    past_history: str = Field("", max_length=4000)
    icd10_code: str = Field("", max_length=16)
    diagnosis: str = Field("", max_length=4000)
    advice: str = Field("", max_length=4000)
    notes: str = Field("", max_length=4000)


class ConsultRecordOut(Schema):
    visit_id: str
    chief_complaint: str
    present_history: str
    past_history: str
    icd10_code: str
    diagnosis: str
    advice: str
    notes: str
    signed: bool
    signed_at: dt.datetime | None
    signed_by_name: str
    signature_valid: bool
    retain_until: dt.date | None
    updated_at: dt.datetime


class ConsultRecordSignIn(Schema):
    pin: str = Field(max_length=32)


class ConsultInviteIn(Schema):
    role: str = Field(pattern="^(family|interpreter|doctor)$")
    invitee_id: int | None = None


class ConsultInvitationOut(Schema):
    id: int
    code: str  # shown once
    role: str
    role_label: str
    expires_at: dt.datetime


class ConsultRedeemIn(Schema):
    code: str = Field(min_length=4, max_length=16)


class ConsultParticipantOut(Schema):
    user_id: int
    name: str
    role: str
    role_label: str
    joined_at: dt.datetime | None


class ConsultRatingIn(Schema):
    stars: int = Field(ge=1, le=5)
    tags: list[str] = Field(default_factory=list, max_length=6)
    comment: str = Field("", max_length=300)


class ConsultRatingOut(Schema):
    stars: int
    tags: list[str]


class ConsultSummaryVisitOut(Schema):
    id: str
    status: str
    status_label: str
    kind: str
    kind_label: str
    patient_name: str
    doctor_name: str
    doctor_title_label: str
    department_name: str
    created_at: dt.datetime
    called_at: dt.datetime | None
    rated: bool
    rating_stars: int | None
    ended_at: dt.datetime | None


class ConsultSummaryRecordOut(Schema):
    signed: bool
    notice: str  # "病历待医生签名" until signed
    chief_complaint: str
    icd10_code: str
    diagnosis: str
    advice: str
    signed_at: dt.datetime | None
    signed_by_name: str
    signature_valid: bool


class ConsultSummaryPrescriptionOut(Schema):
    id: int
    status: str
    status_label: str
    drugs: list[str]


class ConsultSummaryOrderOut(Schema):
    order_no: str
    title: str
    amount_fen: int
    status_label: str


class ConsultSummaryOut(Schema):
    visit: ConsultSummaryVisitOut
    record: ConsultSummaryRecordOut
    prescriptions: list[ConsultSummaryPrescriptionOut]
    orders: list[ConsultSummaryOrderOut]
    scales: list[dict[str, str]]
