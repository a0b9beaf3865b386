"""The visit summary: the header, the signed record without the doctor's private notes
("病历待医生签名" before signing), the visit's prescriptions (drafts left out) and its
orders; 404 for anyone but the visit's account and its doctor."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.care_team.models import CareRelationship
from apps.care_team.services import relationship_open
from apps.commerce.models import Order, OrderItem
from apps.consultations.models import Visit
from apps.pharmacy import services as pharmacy
from apps.pharmacy.rules import DraftInput, LineInput
from tests.conftest import Persona, make_patient
from tests.consultations.clinical_factories import PIN, Clinic, make_clinic, make_doctor

pytestmark = pytest.mark.django_db

NOTES = "私密备注：怀疑依从性差"


def _order(c: Clinic, order_no: str, kind: str, ref: str, amount: int, title: str) -> Order:
    order = Order.objects.create(
        order_no=order_no,
        patient=c.patient,
        payer=c.account.user,
        status=Order.Status.PAID,
        title=title,
        total_fen=amount,
        payable_fen=amount,
        paid_fen=amount,
        channel="h5",
        provider="sandbox",
        client_key=order_no,
        request_hash="x",
        expires_at=timezone.now() + dt.timedelta(minutes=15),
    )
    OrderItem.objects.create(
        order=order, kind=kind, ref=ref, title=title, quantity=1, unit_price_fen=amount, payable_fen=amount
    )
    return order


def _prescription(c: Clinic, *, sign: bool) -> int:
    draft = DraftInput(
        diagnosis="原发性高血压",
        icd10_code="I10",
        valid_days=3,
        lines=[LineInput("AMLO-5", Decimal("5"), "qd", "po", 7, Decimal("1"))],
    )
    p = pharmacy.prescription_create(
        doctor=c.doctor.user,
        patient_id=c.patient.pk,
        draft=draft,
        source_type="consultation",
        source_id=c.visit.public_id,
    )
    if sign:
        pharmacy.prescription_sign(doctor=c.doctor.user, prescription_id=p.pk, pin=PIN)
    return p.pk


def _put_record(c: Clinic) -> None:
    api = c.doctor.api()
    body = {"icd10_code": "I10", "diagnosis": "原发性高血压", "advice": "继续服药，两周后复诊", "notes": NOTES}
    r = api.client.put(
        f"/api/v1/consultations/visits/{c.visit.public_id}/record",
        json.dumps(body),
        content_type="application/json",
        **api._headers(),
    )
    assert r.status_code == 200, r.json()


def _summary(who: Persona, c: Clinic) -> object:
    return who.api().get(f"/consultations/visits/{c.visit.public_id}/summary")


def test_summary_hides_the_notes_and_shows_what_the_visit_produced() -> None:
    c = make_clinic(Visit.Status.IN_PROGRESS)
    relationship_open(staff=c.doctor.user, patient=c.patient, reason=CareRelationship.Reason.VISIT)
    _put_record(c)
    # Unsigned: nothing of the record yet, a notice instead.
    r = _summary(c.account, c)
    assert r.status_code == 200, r.json()  # type: ignore[attr-defined]
    body = r.json()  # type: ignore[attr-defined]
    assert body["record"]["signed"] is False and body["record"]["notice"] == "病历待医生签名"
    assert body["record"]["diagnosis"] == "" and NOTES not in json.dumps(body, ensure_ascii=False)
    assert (
        c.doctor.api().post(f"/consultations/visits/{c.visit.public_id}/record/sign", {"pin": PIN}).status_code == 200
    )
    signed_rx = _prescription(c, sign=True)
    _prescription(c, sign=False)  # a draft: not the patient's to see
    c.visit.order_no = "CV202612010001"
    c.visit.save(update_fields=["order_no"])
    _order(c, "CV202612010001", "consultation", c.visit.public_id, 5000, "视频问诊 李医生")
    _order(c, "RX202612010002", "prescription", str(signed_rx), 2350, "处方药品")
    _order(c, "XX202612010003", "consultation", "another-visit", 3000, "别的问诊")
    for who in (c.account, c.doctor):
        body = _summary(who, c).json()  # type: ignore[attr-defined]
        text = json.dumps(body, ensure_ascii=False)
        assert NOTES not in text and "notes" not in body["record"]
        assert body["visit"]["status_label"] == "问诊中" and body["visit"]["doctor_name"] == "李医生"
        assert body["visit"]["doctor_title_label"] == "主任医师" and body["visit"]["department_name"] == "心内科"
        assert body["record"]["signed"] and body["record"]["diagnosis"] == "原发性高血压"
        assert body["record"]["advice"] == "继续服药，两周后复诊" and body["record"]["signature_valid"]
        assert [(p["id"], p["status_label"]) for p in body["prescriptions"]] == [(signed_rx, "已签名")]
        assert body["prescriptions"][0]["drugs"] and all(body["prescriptions"][0]["drugs"])
        assert [(o["order_no"], o["amount_fen"], o["status_label"]) for o in body["orders"]] == [
            ("CV202612010001", 5000, "已支付"),
            ("RX202612010002", 2350, "已支付"),
        ]


def test_other_accounts_get_404() -> None:
    c = make_clinic(Visit.Status.ENDED)
    other_doctor, _ = make_doctor("sumdoc2", enrol=False)
    for who in (make_patient("13900000097", "路人"), other_doctor):
        r = _summary(who, c)
        assert r.status_code == 404  # type: ignore[attr-defined]
    assert make_patient("13900000098", "x").api().get("/consultations/visits/nope/summary").status_code == 404
