"""Issue 13's clinical text is ciphertext at rest (ADR 0038) and plaintext through the API:
the booking's complaint, the prior record's diagnosis and summary, the guardian's phone,
the visit record (every field incl. the doctor's notes), the terminate note and the
rating's comment. Each forbidden string has a character outside base64's alphabet."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection

from apps.consultations.models import PriorRecord, Rating, Visit, VisitRecord
from tests.commerce.conftest import gateway  # noqa: F401  (fixture)

from .test_booking_support import accept, book, booker, doctor, pay, slot

pytestmark = pytest.mark.django_db

COMPLAINT = "头晕三天，血压一百六"
DIAGNOSIS = "原发性高血压（二级）"
NOTES = "依从性差，需家属督促"
COMMENT = "医生讲得很清楚！"


def _raw(table: str, column: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])
        (raw,) = cursor.fetchone()
    return str(raw)


def _ciphertext(table: str, column: str, pk: int, plain: str) -> None:
    raw = _raw(table, column, pk)
    assert raw.startswith("v1:"), (table, column, raw)
    assert plain not in raw, (table, column)


def test_consultation_clinical_text_is_ciphertext_at_rest_and_plaintext_through_the_api(
    gateway: Any,  # noqa: F811
    django_capture_on_commit_callbacks: Any,
) -> None:
    doc = doctor()
    b = booker()
    record = PriorRecord.objects.get(pk=b.record.pk)
    record.diagnosis, record.summary = DIAGNOSIS, "出院小结：规律服药。"
    record.save()
    booked = book(b, doc, slot(doc))
    booked.chief_complaint = COMPLAINT
    booked.save(update_fields=["chief_complaint"])
    v = pay(gateway, booked, django_capture_on_commit_callbacks)
    accept(doc, v)
    with django_capture_on_commit_callbacks(execute=True):
        assert doc.persona.api().post(f"/consultations/visits/{v.public_id}/call").status_code == 200
    body = {
        "chief_complaint": COMPLAINT,
        "icd10_code": "I10",
        "diagnosis": DIAGNOSIS,
        "advice": "低盐饮食。",
        "notes": NOTES,
    }
    api = doc.persona.api()
    r = api.client.put(
        f"/api/v1/consultations/visits/{v.public_id}/record",
        json.dumps(body),
        content_type="application/json",
        **api._headers(),
    )
    assert r.status_code == 200, r.json()
    with django_capture_on_commit_callbacks(execute=True):
        assert doc.persona.api().post(f"/consultations/visits/{v.public_id}/end").status_code == 200
    r = b.account.api().post(f"/consultations/visits/{v.public_id}/rating", {"stars": 5, "comment": COMMENT})
    assert r.status_code == 201, r.json()

    _ciphertext("consultations_visit", "chief_complaint", v.pk, COMPLAINT)
    _ciphertext("consultations_priorrecord", "diagnosis", record.pk, DIAGNOSIS)
    _ciphertext("consultations_priorrecord", "summary", record.pk, "出院小结")
    rec = VisitRecord.objects.get(visit=v)
    for column, plain in (("chief_complaint", COMPLAINT), ("diagnosis", DIAGNOSIS), ("notes", NOTES)):
        _ciphertext("consultations_visitrecord", column, rec.pk, plain)
    _ciphertext("consultations_rating", "comment", Rating.objects.get(visit=v).pk, COMMENT)

    # Plaintext through the API, to those who may read it.
    assert b.account.api().get(f"/consultations/visits/{v.public_id}").json()["chief_complaint"] == COMPLAINT
    got = doc.persona.api().get(f"/consultations/visits/{v.public_id}/record").json()
    assert (got["diagnosis"], got["notes"]) == (DIAGNOSIS, NOTES)
    assert Visit.objects.get(pk=v.pk).chief_complaint == COMPLAINT
