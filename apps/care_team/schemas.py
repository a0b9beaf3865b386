from __future__ import annotations

import datetime as dt

from ninja import Schema
from pydantic import Field


class TakeIntoCareIn(Schema):
    conversation_id: int
    # Which 就诊人 of the conversation's patient account; optional when there is one (or one 本人).
    patient_id: int | None = None
    until: dt.datetime | None = None
    note: str = Field(default="", max_length=200)


class EndIn(Schema):
    note: str = Field(default="", max_length=200)


class CarePersonOut(Schema):
    id: int
    name: str


class CarePatientOut(Schema):
    id: int
    name: str
    relation_label: str


class RelationshipOut(Schema):
    id: int
    staff: CarePersonOut
    patient: CarePatientOut
    reason: str
    reason_label: str
    source_type: str
    source_id: str
    department: str
    note: str
    starts_at: dt.datetime
    until: dt.datetime
    active: bool
    ended_at: dt.datetime | None
    ended_by: CarePersonOut | None
    end_note: str
    created_at: dt.datetime


class RelationshipListOut(Schema):
    items: list[RelationshipOut]
    count: int


class ReasonOut(Schema):
    reason: str
    reason_label: str
    relationship_id: int | None
    source_type: str
    source_id: str
    until: dt.datetime | None


class PatientProfileOut(Schema):
    """A 就诊人 as the console shows them to clinical staff: identifiers masked."""

    id: int
    name: str
    relation_label: str
    sex_label: str
    age: int
    birth_date: dt.date
    phone_masked: str
    id_number_masked: str
    account_name: str  # the managing account's display name (本人 or the family member who manages)
    reasons: list[str]  # why the caller holds them in care, as labels


class PatientCareOut(Schema):
    patient: CarePatientOut
    in_care: bool
    reasons: list[ReasonOut]
    profile: PatientProfileOut


class CandidateOut(Schema):
    id: int
    name: str
    relation_label: str
    sex_label: str
    age: int
    # The caller's open relationship with this 就诊人 from this conversation, if any.
    relationship: RelationshipOut | None


class ConversationPatientsOut(Schema):
    items: list[CandidateOut]


class PatientSearchOut(Schema):
    items: list[PatientProfileOut]
    count: int
    truncated: bool
