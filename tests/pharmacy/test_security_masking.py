"""security.md 2.4 and 5.4: the pharmacist reviewing a prescription, the doctor and
the patient's account see the 就诊人's and the guardian's ID numbers masked only
(no role here needs the middle digits), and the prescription's free text and the
guardian's ID number are ciphertext in a raw SQL select."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection

from apps.accounts.idcard import make_id_number

from .conftest import PIN, Rx, draft, line

pytestmark = pytest.mark.django_db

GUARDIAN_ID = make_id_number("440106", dt.date(1975, 5, 5), "731")


def _child_prescription(rx: Rx) -> int:
    doc = rx.doctor.api()
    body = draft(
        rx.child,
        [line("LORA-10", dose="5", quantity="1")],
        diagnosis="过敏性鼻炎",
        icd10_code="J30.4",
        note_to_pharmacist="家长诉夜间鼻塞明显",
        guardian={"name": "张三", "relation": "father", "id_number": GUARDIAN_ID},
    )
    r = doc.post("/pharmacy/prescriptions", body)
    assert r.status_code == 201, r.content
    pid = int(r.json()["id"])
    assert doc.post(f"/pharmacy/prescriptions/{pid}/sign", {"pin": PIN}).status_code == 200
    assert doc.post(f"/pharmacy/prescriptions/{pid}/submit").status_code == 200
    return pid


def test_every_role_sees_the_id_numbers_masked(rx: Rx) -> None:
    pid = _child_prescription(rx)
    child_id = rx.child.id_number
    assert len(child_id) == 18 and len(GUARDIAN_ID) == 18
    answers = {
        "pharmacist queue": rx.pharmacist.api().get("/pharmacy/review-queue"),
        "pharmacist detail": rx.pharmacist.api().get(f"/pharmacy/prescriptions/{pid}"),
        "doctor detail": rx.doctor.api().get(f"/pharmacy/prescriptions/{pid}"),
        "patient detail": rx.account.api().get(f"/pharmacy/prescriptions/{pid}"),
    }
    for who, r in answers.items():
        assert r.status_code == 200, (who, r.content)
        text = r.content.decode()
        assert child_id not in text and GUARDIAN_ID not in text, who
        # Not even the middle digits (the birth date) of either number.
        assert child_id[6:14] not in text and GUARDIAN_ID[6:14] not in text, who
    detail = answers["pharmacist detail"].json()
    assert detail["patient"]["id_number_masked"].startswith(child_id[:3])
    assert "*" in detail["patient"]["id_number_masked"] and "*" in detail["guardian"]["id_number_masked"]
    assert detail["note_to_pharmacist"] == "家长诉夜间鼻塞明显"  # the pharmacist still reads the clinical text


def test_prescription_free_text_and_the_guardian_id_are_ciphertext_at_rest(rx: Rx) -> None:
    pid = _child_prescription(rx)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT diagnosis_enc, note_to_pharmacist_enc, guardian_id_number_enc"
            " FROM pharmacy_prescription WHERE id = %s",
            [pid],
        )
        row = cursor.fetchone()
    assert all(v.startswith("v1:") for v in row)
    text = str(row)
    assert "鼻炎" not in text and "鼻塞" not in text and GUARDIAN_ID not in text
