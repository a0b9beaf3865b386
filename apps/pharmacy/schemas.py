"""Request and response shapes of /api/v1/pharmacy/ (explicit fields)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Literal

from ninja import Schema
from pydantic import Field


class DrugOut(Schema):
    code: str
    name: str
    generic_name: str
    category: str
    category_label: str
    dosage_form: str
    specification: str
    unit: str
    dose_unit: str
    pack_dose: str | None
    default_frequency: str
    default_route: str
    controlled_class: str
    controlled_label: str
    tea_class: str
    fsmp_class: str
    registration_no: str
    online_allowed: bool
    tcm_pieces: bool
    price_amount: int
    price_yuan: str
    stock: int | None


class DrugListOut(Schema):
    items: list[DrugOut]
    count: int


class CodeLabel(Schema):
    code: str
    label: str


class FrequencyOut(CodeLabel):
    doses_per_period: int
    period_days: int


class VocabulariesOut(Schema):
    frequencies: list[FrequencyOut]
    routes: list[CodeLabel]
    categories: list[CodeLabel]
    guardian_relations: list[CodeLabel]


class LineIn(Schema):
    drug_code: str = Field(max_length=32)
    dose: Decimal = Field(gt=0, max_digits=10, decimal_places=3)
    frequency: str = Field(max_length=16)
    route: str = Field(max_length=16)
    days: int = Field(ge=1, le=365)
    quantity: Decimal = Field(gt=0, max_digits=10, decimal_places=3)
    instructions: str = Field("", max_length=100)


class GuardianIn(Schema):
    name: str = Field("", max_length=64)
    relation: str = Field("", max_length=16)
    id_number: str = Field("", max_length=18)


class DraftIn(Schema):
    diagnosis: str = Field(max_length=500)
    icd10_code: str = Field("", max_length=16)
    chronic_reason: str = Field("", max_length=200)
    valid_days: int = Field(1, ge=1, le=30)
    guardian: GuardianIn = Field(default_factory=lambda: GuardianIn(name="", relation="", id_number=""))
    note_to_pharmacist: str = Field("", max_length=500)
    lines: list[LineIn] = Field(max_length=50)


class CreateIn(DraftIn):
    patient_id: int = Field(ge=1, le=2**63 - 1)
    # Where it was written (a visit: ``consultation`` + the visit's id); shown with that visit.
    source_type: Literal["", "consultation", "tcm", "nutrition", "rehab"] = ""
    source_id: str = Field("", max_length=64, pattern=r"^[A-Za-z0-9_-]*$")


class SignIn(Schema):
    pin: str = Field(max_length=32)


class ReasonIn(Schema):
    reason: str = Field("", max_length=500)


class PrescriptionRejectIn(Schema):
    reason: str = Field(max_length=500)
    note: str = Field("", max_length=500)


class ApproveIn(Schema):
    note: str = Field("", max_length=500)


class AllergyIn(Schema):
    allergen: str = Field(max_length=64)
    reaction: str = Field("", max_length=200)


class AllergyOut(Schema):
    id: int | None
    allergen: str
    reaction: str
    source: str
    source_label: str
    recorded_at: dt.datetime | None


class AllergyListOut(Schema):
    items: list[AllergyOut]


class LineOut(Schema):
    position: int
    drug_code: str
    drug_name: str
    specification: str
    dose: str
    dose_unit: str
    frequency: str
    frequency_label: str
    route: str
    route_label: str
    days: int
    quantity: str
    quantity_unit: str
    instructions: str
    unit_price_amount: int
    amount: int
    entered_by: int
    entered_at: dt.datetime


class PatientContextOut(Schema):
    id: int
    name: str
    sex: str
    sex_label: str
    age: int
    birth_date: dt.date
    id_number_masked: str
    allergies: list[AllergyOut]


class DoctorOut(Schema):
    id: int
    name: str
    department: str
    title: str


class GuardianOut(Schema):
    name: str
    relation: str
    relation_label: str
    id_number_masked: str


class DeliveryChoiceIn(Schema):
    method: str = Field(pattern="^(courier|pickup)$", description="courier 快递到家 / pickup 到院自取")
    address_id: int | None = Field(default=None, ge=1, le=2**63 - 1, description="快递到家时的收货地址")


class PrescriptionOut(Schema):
    id: int
    number: str
    status: str
    status_label: str
    kind: str
    kind_label: str
    version: int
    patient: PatientContextOut
    doctor: DoctorOut
    diagnosis: str
    icd10_code: str
    chronic_reason: str
    valid_days: int
    guardian: GuardianOut
    lines: list[LineOut]
    total_amount: int
    total_yuan: str
    created_at: dt.datetime
    updated_at: dt.datetime
    issued_at: dt.datetime | None
    expires_at: dt.datetime | None
    submitted_at: dt.datetime | None
    reviewed_at: dt.datetime | None
    reviewed_by_name: str
    paid_at: dt.datetime | None
    dispensed_at: dt.datetime | None
    delivery_method: str = Field(description="患者选择的取药方式：courier / pickup；空为未选择")
    delivery_method_label: str
    signed: bool
    signature_valid: bool
    content_digest: str
    cert_serial: str
    note_to_pharmacist: str
    reject_reason: str
    review_note: str
    cancel_reason: str
    source_type: str
    source_id: str
    allowed_actions: list[str]


class PrescriptionListOut(Schema):
    items: list[PrescriptionOut]
    count: int


class CertificateOut(Schema):
    enrolled: bool
    signer: str
    serial: str = ""
    subject: str = ""
    issuer: str = ""
    not_before: dt.datetime | None = None
    not_after: dt.datetime | None = None
    revoked: bool = False
    locked_until: dt.datetime | None = None


class EnrolIn(Schema):
    pin: str = Field(max_length=32)
