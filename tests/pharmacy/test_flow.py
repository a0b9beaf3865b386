"""The lifecycle end to end: draft -> signed -> submitted -> rejected -> revised ->
signed -> submitted -> approved -> paid -> dispensed, each step audited."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.core.models import TransitionEvent
from apps.pharmacy import services
from apps.pharmacy.models import PatientAllergy, Prescription
from apps.todos.registry import todos_for
from tests.conftest import Api

from .conftest import PIN, Rx, draft, line

SH = ZoneInfo("Asia/Shanghai")


def put(api: Api, path: str, body: dict[str, Any]) -> Any:
    return api.client.put(f"/api/v1{path}", json.dumps(body), content_type="application/json", **api._headers())


def create(rx: Rx, **kw: Any) -> int:
    r = rx.doctor.api().post("/pharmacy/prescriptions", draft(rx.me, **kw))
    assert r.status_code == 201, r.content
    return int(r.json()["id"])


def sign_and_submit(rx: Rx, pid: int) -> None:
    doc = rx.doctor.api()
    r = doc.post(f"/pharmacy/prescriptions/{pid}/sign", {"pin": PIN})
    assert r.status_code == 200, r.content
    r = doc.post(f"/pharmacy/prescriptions/{pid}/submit")
    assert r.status_code == 200, r.content


@pytest.mark.django_db
def test_reject_revise_resubmit_approve_pay_dispense(rx: Rx) -> None:
    doc, pharm = rx.doctor.api(), rx.pharmacist.api()
    pid = create(rx, note_to_pharmacist="患者诉偶有踝部水肿")
    signed = doc.post(f"/pharmacy/prescriptions/{pid}/sign", {"pin": PIN}).json()
    assert signed["status"] == "signed" and signed["signature_valid"] is True
    assert len(signed["content_digest"]) == 64 and signed["cert_serial"]
    assert signed["allowed_actions"] == ["submit", "revise", "cancel"]
    # signed content cannot be edited in place
    r = put(doc, f"/pharmacy/prescriptions/{pid}", draft(rx.me, lines=[line(days=3)]))
    assert r.status_code == 409 and r.json()["code"] == "pharmacy.transition_refused"
    assert doc.post(f"/pharmacy/prescriptions/{pid}/submit").json()["status"] == "submitted"

    queue = pharm.get("/pharmacy/review-queue").json()
    assert queue["count"] == 1
    item = queue["items"][0]
    assert item["patient"]["age"] >= 18 and item["patient"]["sex_label"] in ("男", "女")
    assert item["lines"][0]["drug_code"] == "AMLO-5" and item["note_to_pharmacist"] == "患者诉偶有踝部水肿"
    assert item["allowed_actions"] == ["approve", "reject"]

    r = pharm.post(f"/pharmacy/prescriptions/{pid}/reject", {"reason": "  "})
    assert r.status_code == 422 and r.json()["code"] == "pharmacy.reason_required"
    r = pharm.post(f"/pharmacy/prescriptions/{pid}/reject", {"reason": "氨氯地平与水肿相关，请评估后调整"})
    assert r.json()["status"] == "rejected"
    # the doctor reads the reason, the patient does not
    mine = doc.get(f"/pharmacy/prescriptions/{pid}").json()
    assert mine["reject_reason"] == "氨氯地平与水肿相关，请评估后调整"
    assert [t.kind for t in todos_for(rx.doctor.user)[0]] == ["pharmacy.prescriptions_to_revise"]
    theirs = rx.account.api().get(f"/pharmacy/prescriptions/{pid}").json()
    assert theirs["reject_reason"] == "" and theirs["note_to_pharmacist"] == "" and theirs["cert_serial"] == ""

    revised = doc.post(f"/pharmacy/prescriptions/{pid}/revise").json()
    assert revised["status"] == "revised" and revised["version"] == 2 and revised["signed"] is False
    r = put(doc, f"/pharmacy/prescriptions/{pid}", draft(rx.me, lines=[line("ATOR-20", dose="20", frequency="qn")]))
    assert r.status_code == 200, r.content
    assert r.json()["lines"][0]["drug_code"] == "ATOR-20"
    sign_and_submit(rx, pid)
    approved = pharm.post(f"/pharmacy/prescriptions/{pid}/approve", {"note": "已核对"}).json()
    assert approved["status"] == "approved" and approved["reviewed_by_name"]

    assert services.prescription_can_be_paid(pid) is True
    assert services.prescription_can_be_dispensed(pid) is False
    services.prescription_mark_paid(prescription_id=pid, payment_ref="order-1")
    assert services.prescription_can_be_dispensed(pid) is True
    assert pharm.post(f"/pharmacy/prescriptions/{pid}/dispense").json()["status"] == "dispensed"
    assert services.prescription_can_be_shipped(pid) is True

    steps = list(
        TransitionEvent.objects.filter(object_type="pharmacy.prescription", object_id=str(pid))
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert steps == ["sign", "submit", "reject", "revise", "sign", "submit", "approve", "pay", "dispense"]
    audited = list(
        AuditEvent.objects.filter(
            object_type="prescription", object_id=str(pid), action__startswith="pharmacy.prescription_"
        )
        .exclude(action="pharmacy.prescription_view")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert audited[0] == "pharmacy.prescription_create" and audited[-1] == "pharmacy.prescription_dispense"
    assert "pharmacy.prescription_reject" in audited and "pharmacy.prescription_edit" in audited
    # details carry ids and codes only: no diagnosis, reason or drug text
    for event in AuditEvent.objects.filter(object_type="prescription"):
        text = json.dumps(event.detail, ensure_ascii=False)
        assert "高血压" not in text and "水肿" not in text and "氨氯地平" not in text


@pytest.mark.django_db
def test_validity_is_the_day_issued_in_beijing_days_and_the_sweep_expires(rx: Rx) -> None:
    one = create(rx, valid_days=1)
    three = create(rx, valid_days=3, lines=[line("ATOR-20", dose="20", frequency="qn")])
    for pid in (one, three):
        sign_and_submit(rx, pid)
    p1, p3 = Prescription.objects.get(pk=one), Prescription.objects.get(pk=three)
    for p, days in ((p1, 1), (p3, 3)):
        issued_day = timezone.localtime(p.issued_at, SH).date()
        assert p.expires_at == dt.datetime.combine(issued_day + dt.timedelta(days=days), dt.time(0), tzinfo=SH)
    # the three-day one is approved (valid for days yet, whatever the time of the run)
    assert rx.pharmacist.api().post(f"/pharmacy/prescriptions/{three}/approve", {}).status_code == 200
    assert services.prescription_can_be_paid(three, now=p3.expires_at - dt.timedelta(seconds=1)) is True
    assert services.prescription_can_be_paid(three, now=p3.expires_at) is False

    assert services.prescriptions_expire_due(now=p1.expires_at) == 1
    assert Prescription.objects.get(pk=one).status == "expired"
    assert Prescription.objects.get(pk=three).status == "approved"
    assert services.prescriptions_expire_due(now=p1.expires_at) == 0  # safe to re-run
    event = TransitionEvent.objects.get(object_id=str(one), action="expire")
    assert event.actor is None
    assert AuditEvent.objects.filter(action="pharmacy.prescription_expire", actor_username="system").count() == 1


@pytest.mark.django_db
def test_to_dos_for_pharmacist_and_doctor(rx: Rx) -> None:
    assert todos_for(rx.pharmacist.user)[0] == []
    pid = create(rx)
    sign_and_submit(rx, pid)
    (todo,) = todos_for(rx.pharmacist.user)[0]
    assert todo.kind == "pharmacy.prescriptions_to_review" and todo.count == 1 and todo.route == "pharmacy-review"
    assert todos_for(rx.doctor.user)[0] == []


@pytest.mark.django_db
def test_allergies_are_recorded_with_their_source(rx: Rx) -> None:
    r = rx.account.api().post(f"/pharmacy/patients/{rx.me.pk}/allergies", {"allergen": "青霉素类", "reaction": "皮疹"})
    assert r.status_code == 201 and r.json()["source"] == "patient_reported"
    r = rx.doctor.api().post(f"/pharmacy/patients/{rx.child.pk}/allergies", {"allergen": "头孢菌素类"})
    assert r.status_code == 201 and r.json()["source"] == "hospital"
    listed = rx.doctor.api().get(f"/pharmacy/patients/{rx.me.pk}/allergies").json()["items"]
    assert [(a["allergen"], a["source_label"]) for a in listed] == [("青霉素类", "患者自述")]
    row = PatientAllergy.objects.get(patient=rx.me)
    assert "青霉素" not in row.allergen_enc
    # a pharmacist without a prescription of this patient under review: 404
    assert rx.pharmacist.api().get(f"/pharmacy/patients/{rx.me.pk}/allergies").status_code == 404


def test_expiry_counts_beijing_days_not_utc_days() -> None:
    # 23:30 in Beijing on 1 Dec is 15:30 UTC: valid until midnight Beijing, 16:00 UTC.
    late = dt.datetime(2026, 12, 1, 15, 30, tzinfo=dt.UTC)
    assert services._expiry(late, 1) == dt.datetime(2026, 12, 1, 16, 0, tzinfo=dt.UTC)
    # 00:30 in Beijing on 2 Dec is still 1 Dec in UTC: it is a 2 Dec prescription.
    early = dt.datetime(2026, 12, 1, 16, 30, tzinfo=dt.UTC)
    assert services._expiry(early, 1) == dt.datetime(2026, 12, 2, 16, 0, tzinfo=dt.UTC)
    assert services._expiry(early, 3) == dt.datetime(2026, 12, 4, 16, 0, tzinfo=dt.UTC)


@pytest.mark.django_db
def test_the_periodic_sweep_is_registered_and_safe_to_run(rx: Rx) -> None:
    from apps.pharmacy.tasks import expire_prescriptions

    pid = create(rx, valid_days=3)  # valid for days yet, whatever the time of the run
    sign_and_submit(rx, pid)
    assert expire_prescriptions.call_local() == 0
    assert Prescription.objects.get(pk=pid).status == "submitted"
