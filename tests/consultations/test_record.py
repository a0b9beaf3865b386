"""The visit record: written by the visit's doctor, signed through the CA as prescriptions
are, complete before signing, immutable once signed, and its signature fails when the
row is changed afterwards (through SQL). Kept 15 years (R9); the audit holds no content."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.consultations.models import Visit, VisitRecord
from apps.consultations.record import content_digest, signature_valid
from tests.consultations.clinical_factories import PIN, Clinic, make_clinic, make_doctor

pytestmark = pytest.mark.django_db

FULL = {
    "chief_complaint": "头晕一周",
    "present_history": "血压波动于150-160/90-100mmHg",
    "past_history": "高血压5年",
    "icd10_code": "i10",
    "diagnosis": "原发性高血压",
    "advice": "氨氯地平加量至10mg qd，低盐饮食，两周后复诊",
    "notes": "患者依从性一般，下次重点询问服药情况",
}


@pytest.fixture
def clinic() -> Clinic:
    return make_clinic(Visit.Status.IN_PROGRESS)


def _path(c: Clinic, tail: str = "") -> str:
    return f"/consultations/visits/{c.visit.public_id}/record{tail}"


def test_sign_happy_path(clinic: Clinic) -> None:
    api = clinic.doctor.api()
    r = api.get(_path(clinic))
    assert r.status_code == 200 and r.json()["chief_complaint"] == "血压控制不佳，复诊调药" and not r.json()["signed"]
    r = _put(api, _path(clinic), FULL)
    assert r.status_code == 200, r.json()
    assert r.json()["icd10_code"] == "I10" and r.json()["notes"] == FULL["notes"]
    # Clinical text is ciphertext in the table.
    with connection.cursor() as cur:
        cur.execute("SELECT diagnosis, notes FROM consultations_visitrecord WHERE visit_id = %s", [clinic.visit.pk])
        diagnosis, notes = cur.fetchone()
    assert "高血压" not in diagnosis and "依从性" not in notes
    r = api.post(_path(clinic, "/sign"), {"pin": PIN})
    assert r.status_code == 200, r.json()
    body = r.json()
    assert body["signed"] and body["signature_valid"] and body["signed_by_name"] == "李医生"
    row = VisitRecord.objects.get(visit=clinic.visit)
    assert row.signed_at is not None and row.retain_until is not None
    assert row.retain_until == timezone.localdate(row.signed_at).replace(
        year=timezone.localdate(row.signed_at).year + 15
    )
    assert len(row.content_hash) == 64 and row.certificate_serial and row.signature_algorithm == "ECDSA-P256-SHA256"
    event = AuditEvent.objects.get(action="consult.record_sign")
    assert event.object_id == clinic.visit.public_id and set(event.detail) == {"cert", "retain_until"}
    assert "高血压" not in str(event.detail)
    assert api.get(_path(clinic)).json()["signature_valid"] is True


def _put(api: Any, path: str, body: dict[str, Any]) -> Any:
    return api.client.put("/api/v1" + path, json.dumps(body), content_type="application/json", **api._headers())


def test_signing_needs_code_diagnosis_and_advice(clinic: Clinic) -> None:
    api = clinic.doctor.api()
    for missing, label in (("icd10_code", "ICD-10"), ("diagnosis", "诊断"), ("advice", "处理意见")):
        assert _put(api, _path(clinic), {**FULL, missing: ""}).status_code == 200
        r = api.post(_path(clinic, "/sign"), {"pin": PIN})
        assert r.status_code == 422 and r.json()["code"] == "consult.record_incomplete", r.json()
        assert label in r.json()["message"]
    # A malformed ICD-10 code is refused when saved.
    r = _put(api, _path(clinic), {**FULL, "icd10_code": "高血压"})
    assert r.status_code == 422 and r.json()["detail"]["field"] == "icd10_code"
    assert not VisitRecord.objects.filter(signed_at__isnull=False).exists()
    assert not AuditEvent.objects.filter(action="consult.record_sign").exists()


def test_a_wrong_pin_is_the_ca_refusal_and_signs_nothing(clinic: Clinic) -> None:
    api = clinic.doctor.api()
    _put(api, _path(clinic), FULL)
    r = api.post(_path(clinic, "/sign"), {"pin": "000000"})
    assert r.status_code == 422 and r.json()["code"] == "pharmacy.ca_pin_wrong", r.json()
    assert VisitRecord.objects.get(visit=clinic.visit).signed_at is None


def test_a_signed_record_is_immutable(clinic: Clinic) -> None:
    api = clinic.doctor.api()
    _put(api, _path(clinic), FULL)
    assert api.post(_path(clinic, "/sign"), {"pin": PIN}).status_code == 200
    r = _put(api, _path(clinic), {**FULL, "diagnosis": "继发性高血压"})
    assert r.status_code == 409 and r.json()["code"] == "consult.record_signed"
    r = api.post(_path(clinic, "/sign"), {"pin": PIN})
    assert r.status_code == 409 and r.json()["code"] == "consult.record_signed"
    assert VisitRecord.objects.get(visit=clinic.visit).diagnosis == "原发性高血压"


def test_tampering_with_the_row_fails_the_signature(clinic: Clinic) -> None:
    api = clinic.doctor.api()
    _put(api, _path(clinic), FULL)
    assert api.post(_path(clinic, "/sign"), {"pin": PIN}).json()["signature_valid"]
    # Changed behind the application's back: the stored code is no longer the row's.
    VisitRecord.objects.filter(visit=clinic.visit).update(icd10_code="I15")
    assert api.get(_path(clinic)).json()["signature_valid"] is False
    # So is a forged digest that matches the changed row: the CA signature does not.
    row = VisitRecord.objects.get(visit=clinic.visit)
    VisitRecord.objects.filter(pk=row.pk).update(content_hash=content_digest(row).hex())
    assert signature_valid(VisitRecord.objects.get(pk=row.pk)) is False


def test_only_the_visits_doctor_and_only_in_progress_or_ended(clinic: Clinic) -> None:
    other, _ = make_doctor("recdoc2", enrol=False)
    assert other.api().get(_path(clinic)).status_code == 404
    assert _put(other.api(), _path(clinic), FULL).status_code == 404
    assert AuditEvent.objects.filter(action="consult.record_denied", actor_id=other.user.pk).exists()
    # The patient account is no doctor: the record (with the private notes) is not theirs to read.
    assert clinic.account.api().get(_path(clinic)).status_code == 403
    # A visit not yet called in has no record to write.
    waiting = make_clinic(Visit.Status.ACCEPTED, phone="13900000072")
    r = _put(waiting.doctor.api(), _path(waiting), FULL)
    assert r.status_code == 409 and r.json()["code"] == "consult.transition_refused"
    # An ended visit's record is still written and signed.
    ended = make_clinic(Visit.Status.ENDED, phone="13900000073")
    assert _put(ended.doctor.api(), _path(ended), FULL).status_code == 200
    assert ended.doctor.api().post(_path(ended, "/sign"), {"pin": PIN}).status_code == 200
