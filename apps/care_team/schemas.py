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


class PersonOut(Schema):
    id: int
    name: str


class PatientOut(Schema):
    id: int
    name: str
    relation_label: str


class RelationshipOut(Schema):
    id: int
    staff: PersonOut
    patient: PatientOut
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
    ended_by: PersonOut | None
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


class PatientCareOut(Schema):
    patient: PatientOut
    in_care: bool
    reasons: list[ReasonOut]


class CandidateOut(Schema):
    id: int
    name: str
    relation_label: str
    # The caller's open relationship with this 就诊人 from this conversation, if any.
    relationship: RelationshipOut | None


class ConversationPatientsOut(Schema):
    items: list[CandidateOut]
