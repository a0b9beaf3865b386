"""The visit record (在线诊疗病历): written by the visit's doctor while the visit is in
progress or ended and the record unsigned; signed through the doctor's CA exactly as
prescriptions are (``apps.pharmacy.ca``): ``hub.signing.canonical_json`` of the
content -> SHA-256 -> ``CaSigner.sign`` with the PIN. A signed record is immutable
(``consult.record_signed``); :func:`signature_valid` recomputes the digest from the
row, so a change after signing (through the API or in SQL) fails verification.
Kept 15 years from the signing date (R9). ``notes`` are the doctor's private notes:
never shown to the patient (the summary leaves them out). The audit holds ids only."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.audit.services import audit_record
from apps.pharmacy import ca
from apps.pharmacy.errors import PharmacyCode, PharmacyError
from hub.errors import Invalid, NotFound
from hub.signing import canonical_json

from .errors import ConsultCode, ConsultError
from .models import Visit, VisitRecord

CONTENT_VERSION = 1
RETENTION_YEARS = 15  # R9
ICD10 = re.compile(r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?$")  # as apps.pharmacy.rules.ICD10
WRITABLE = (Visit.Status.IN_PROGRESS, Visit.Status.ENDED)
FIELDS = ("chief_complaint", "present_history", "past_history", "icd10_code", "diagnosis", "advice", "notes")
TEXT_MAX = 4000


@dataclass(frozen=True)
class RecordInput:
    chief_complaint: str = ""
    present_history: str = ""
    past_history: str = ""
    icd10_code: str = ""
    diagnosis: str = ""
    advice: str = ""
    notes: str = ""


def _visit_of_doctor(user: User, visit_id: str) -> Visit:
    visit = Visit.objects.select_related("patient", "doctor__user").filter(public_id=visit_id).first()
    if visit is None or visit.doctor is None or visit.doctor.user_id != user.pk:
        audit_record(
            action="consult.record_denied", actor=user, object_type="visit", object_id=visit_id, result="denied"
        )
        raise NotFound("问诊")
    return visit


def _record(visit: Visit) -> VisitRecord:
    record, _ = VisitRecord.objects.get_or_create(visit=visit, defaults={"chief_complaint": visit.chief_complaint})
    return record


def record_get(*, user: User, visit_id: str) -> VisitRecord:
    visit = _visit_of_doctor(user, visit_id)
    if visit.status not in WRITABLE and not VisitRecord.objects.filter(visit=visit).exists():
        raise ConsultError(ConsultCode.TRANSITION_REFUSED)
    return _record(visit)


def record_put(*, user: User, visit_id: str, data: RecordInput) -> VisitRecord:
    visit = _visit_of_doctor(user, visit_id)
    code = data.icd10_code.strip().upper()
    if code and not ICD10.match(code):
        raise Invalid("ICD-10 编码格式不正确（如 I10、E11.9）", field="icd10_code")
    for name in FIELDS:
        if len(getattr(data, name)) > TEXT_MAX:
            raise Invalid("内容过长", field=name)
    with transaction.atomic():
        _record(visit)
        record = VisitRecord.objects.select_for_update().get(visit=visit)
        visit = Visit.objects.get(pk=visit.pk)
        if record.signed_at is not None:
            raise ConsultError(ConsultCode.RECORD_SIGNED)
        if visit.status not in WRITABLE:
            raise ConsultError(ConsultCode.TRANSITION_REFUSED)
        for name in FIELDS:
            setattr(record, name, getattr(data, name).strip())
        record.icd10_code = code
        record.updated_at = timezone.now()
        record.save()
        audit_record(action="consult.record_edit", actor=user, object_type="visit", object_id=visit.public_id)
    return record


# --- signing ------------------------------------------------------------------------


def _iso(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).isoformat() if value else ""


def canonical_content(record: VisitRecord, *, signed_at: dt.datetime | None = None) -> dict[str, Any]:
    visit = record.visit
    patient = visit.patient
    return {
        "v": CONTENT_VERSION,
        "visit": visit.public_id,
        "kind": visit.kind,
        "patient": {"id": patient.pk, "name": patient.name, "sex": patient.sex, "birth_date": str(patient.birth_date)},
        "doctor": record.signed_by_id or (visit.doctor.user_id if visit.doctor else None),
        "chief_complaint": record.chief_complaint,
        "present_history": record.present_history,
        "past_history": record.past_history,
        "icd10": record.icd10_code,
        "diagnosis": record.diagnosis,
        "advice": record.advice,
        "notes": record.notes,
        "signed_at": _iso(signed_at or record.signed_at),
    }


def content_digest(record: VisitRecord, *, signed_at: dt.datetime | None = None) -> bytes:
    return hashlib.sha256(canonical_json(canonical_content(record, signed_at=signed_at))).digest()


def _retain_until(signed: dt.date) -> dt.date:
    try:
        return signed.replace(year=signed.year + RETENTION_YEARS)
    except ValueError:  # 29 February
        return signed.replace(year=signed.year + RETENTION_YEARS, day=28)


def _require_complete(record: VisitRecord) -> None:
    for name, label in (("icd10_code", "诊断编码（ICD-10）"), ("diagnosis", "诊断"), ("advice", "处理意见")):
        if not getattr(record, name).strip():
            raise ConsultError(ConsultCode.RECORD_INCOMPLETE, field=label)
    if not ICD10.match(record.icd10_code):
        raise Invalid("ICD-10 编码格式不正确（如 I10、E11.9）", field="icd10_code")


def record_sign(*, user: User, visit_id: str, pin: str) -> VisitRecord:
    """The doctor's CA signature over the record's canonical content. The CA is asked
    outside the transaction (a wrong PIN stays counted); the content must still be
    what was signed when the signature is stored."""
    visit = _visit_of_doctor(user, visit_id)
    record = VisitRecord.objects.select_related("visit__patient", "visit__doctor").filter(visit=visit).first()
    if record is None:
        raise ConsultError(ConsultCode.RECORD_INCOMPLETE, field="诊断")
    if record.signed_at is not None:
        raise ConsultError(ConsultCode.RECORD_SIGNED)
    if visit.status not in WRITABLE:
        raise ConsultError(ConsultCode.TRANSITION_REFUSED)
    _require_complete(record)
    signed_at = timezone.now()
    record.signed_by = user
    digest = content_digest(record, signed_at=signed_at)
    signature = ca.signer().sign(user, digest, pin=pin)
    with transaction.atomic():
        locked = (
            VisitRecord.objects.select_for_update(of=("self",))
            .select_related("visit__patient", "visit__doctor")
            .get(pk=record.pk)
        )
        if locked.signed_at is not None:
            raise ConsultError(ConsultCode.RECORD_SIGNED)
        locked.signed_by = user
        if content_digest(locked, signed_at=signed_at) != digest:
            raise PharmacyError(PharmacyCode.CONTENT_CHANGED)
        locked.signed_at = signed_at
        locked.content_hash = digest.hex()
        locked.signature = signature.value
        locked.signature_algorithm = signature.algorithm
        locked.certificate_serial = signature.cert_serial
        locked.retain_until = _retain_until(timezone.localdate(signed_at))
        locked.save(
            update_fields=[
                "signed_at",
                "signed_by",
                "content_hash",
                "signature",
                "signature_algorithm",
                "certificate_serial",
                "retain_until",
            ]
        )
        audit_record(
            action="consult.record_sign",
            actor=user,
            object_type="visit",
            object_id=visit.public_id,
            detail={"cert": signature.cert_serial, "retain_until": locked.retain_until.isoformat()},
        )
    return locked


def signature_valid(record: VisitRecord) -> bool:
    """True when the stored signature is the signer's CA signature over the record as
    it is now in the database."""
    if not (record.signature and record.signed_at and record.certificate_serial and record.signed_by_id):
        return False
    digest = content_digest(record)
    if digest.hex() != record.content_hash:
        return False
    try:
        signer = ca.signer()
    except PharmacyError:
        return False
    sig = ca.Signature(
        algorithm=record.signature_algorithm or ca.ALGORITHM,
        value=record.signature,
        cert_serial=record.certificate_serial,
        signed_at=record.signed_at,
    )
    assert record.signed_by is not None
    return signer.verify(record.signed_by, digest, sig)


def record_view(record: VisitRecord) -> dict[str, Any]:
    """The doctor's view (with the private notes)."""
    signer = record.signed_by
    return {
        "visit_id": record.visit.public_id,
        **{name: getattr(record, name) for name in FIELDS},
        "signed": record.signed_at is not None,
        "signed_at": record.signed_at,
        "signed_by_name": (signer.display_name or signer.username) if signer else "",
        "signature_valid": signature_valid(record) if record.signed_at else False,
        "retain_until": record.retain_until,
        "updated_at": record.updated_at,
    }
