"""Accepting a visit (R1, R4) and terminating it (R2): the doctor's own identity
step-up for this visit (password or TOTP; wrong answers count and lock like
login), 复诊 confirmed, a prior record on file and reviewed; a terminated visit is
refunded in full, the patient told and an advice card posted in its conversation."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.commerce.models import Order, Refund
from apps.consultations.errors import ConsultCode
from apps.consultations.models import PriorRecord, Slot, Visit
from apps.im.models import Message
from apps.notifications.models import Notification
from tests.commerce.conftest import balanced, gateway  # noqa: F401  (fixture)

from .test_booking_support import Doc, accept, book, booker, doctor, order_of, pay, slot

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _refunds_succeed(gateway: Any) -> None:  # noqa: F811
    gateway.refund_answer = "success"


def _waiting(gateway: Any, capture: Any, doc: Doc | None = None, **kw: Any) -> tuple[Doc, Visit]:  # noqa: F811
    doc = doc or doctor()
    return doc, pay(gateway, book(booker(**kw), doc, slot(doc)), capture)


def _post(doc: Doc, visit: Visit, what: str, body: dict[str, Any] | None = None) -> Any:
    return doc.persona.api().post(f"/consultations/visits/{visit.public_id}/{what}", body or {})


def test_accepting_without_a_step_up_is_refused(gateway: Any, django_capture_on_commit_callbacks: Any) -> None:  # noqa: F811
    doc, v = _waiting(gateway, django_capture_on_commit_callbacks)
    r = _post(doc, v, "accept", {"confirm_followup": True})
    assert r.status_code == 403 and r.json()["code"] == ConsultCode.STEP_UP_REQUIRED
    v.refresh_from_db()
    assert v.status == Visit.Status.WAITING and v.accepted_at is None
    # A step-up older than CONSULT_STEP_UP_MINUTES no longer counts.
    assert _post(doc, v, "step-up", {"method": "password", "password": doc.persona.password}).status_code == 200
    Visit.objects.filter(pk=v.pk).update(step_up_at=timezone.now() - dt.timedelta(minutes=11))
    r = _post(doc, v, "accept", {"confirm_followup": True})
    assert r.json()["code"] == ConsultCode.STEP_UP_REQUIRED
    # A step-up for another visit does not count for this one.
    _, other = _waiting(gateway, django_capture_on_commit_callbacks, doc)
    assert _post(doc, other, "step-up", {"method": "password", "password": doc.persona.password}).status_code == 200
    assert _post(doc, v, "accept", {"confirm_followup": True}).json()["code"] == ConsultCode.STEP_UP_REQUIRED


def test_the_followup_must_be_confirmed(gateway: Any, django_capture_on_commit_callbacks: Any) -> None:  # noqa: F811
    doc, v = _waiting(gateway, django_capture_on_commit_callbacks)
    r = _post(doc, v, "step-up", {"method": "password", "password": doc.persona.password})
    assert r.status_code == 200 and r.json()["valid_until"]
    r = _post(doc, v, "accept", {"confirm_followup": False})
    assert r.status_code == 422 and r.json()["code"] == ConsultCode.FOLLOWUP_NOT_CONFIRMED
    r = _post(doc, v, "accept", {"confirm_followup": True})
    assert r.status_code == 200 and r.json()["status"] == "accepted"
    audit = AuditEvent.objects.filter(action="consult.step_up", object_id=v.public_id).get()
    assert audit.detail == {"method": "password"}
    assert doc.persona.password not in json.dumps(AuditEvent.objects.values_list("detail", flat=True)[::1])


def test_wrong_passwords_count_and_lock_the_step_up(gateway: Any, django_capture_on_commit_callbacks: Any) -> None:  # noqa: F811
    doc, v = _waiting(gateway, django_capture_on_commit_callbacks)
    for remaining in (4, 3, 2, 1):
        r = _post(doc, v, "step-up", {"method": "password", "password": "wrong-password-1"})
        assert r.status_code == 422 and r.json()["code"] == ConsultCode.STEP_UP_FAILED
        assert str(remaining) in r.json()["message"]
    r = _post(doc, v, "step-up", {"method": "password", "password": "wrong-password-1"})
    assert r.status_code == 423 and r.json()["code"] == ConsultCode.STEP_UP_LOCKED
    # Locked: even the right password is not looked at now.
    r = _post(doc, v, "step-up", {"method": "password", "password": doc.persona.password})
    assert r.status_code == 423
    v.refresh_from_db()
    assert v.step_up_at is None
    assert AuditEvent.objects.filter(action="consult.step_up_failed", object_id=v.public_id).count() == 5
    assert "wrong-password-1" not in json.dumps(list(AuditEvent.objects.values_list("detail", flat=True)))


def test_totp_step_up(gateway: Any, django_capture_on_commit_callbacks: Any) -> None:  # noqa: F811
    doc, v = _waiting(gateway, django_capture_on_commit_callbacks)
    assert _post(doc, v, "step-up", {"method": "totp", "code": "000000"}).status_code == 422
    r = _post(doc, v, "step-up", {"method": "totp", "code": doc.persona.totp()})
    assert r.status_code == 200
    v.refresh_from_db()
    assert v.step_up_method == "totp"
    assert _post(doc, v, "accept", {"confirm_followup": True}).status_code == 200


def test_an_unreviewed_upload_cannot_be_accepted_until_the_doctor_accepts_it(
    gateway: Any,  # noqa: F811
    django_capture_on_commit_callbacks: Any,
) -> None:
    doc, v = _waiting(gateway, django_capture_on_commit_callbacks, record="upload", review="pending")
    assert _post(doc, v, "step-up", {"method": "password", "password": doc.persona.password}).status_code == 200
    r = _post(doc, v, "accept", {"confirm_followup": True})
    assert r.status_code == 409 and r.json()["code"] == ConsultCode.PRIOR_RECORD_UNREVIEWED
    v.refresh_from_db()
    assert v.status == Visit.Status.WAITING
    # Rejected: no diagnosis on file.
    PriorRecord.objects.filter(pk=v.prior_record_id).update(review=PriorRecord.Review.REJECTED)
    assert _post(doc, v, "accept", {"confirm_followup": True}).json()["code"] == ConsultCode.NO_PRIOR_RECORD
    PriorRecord.objects.filter(pk=v.prior_record_id).update(review=PriorRecord.Review.ACCEPTED)
    assert _post(doc, v, "accept", {"confirm_followup": True}).status_code == 200


def test_terminate_refunds_in_full_notifies_and_posts_the_advice_card(
    gateway: Any,  # noqa: F811
    django_capture_on_commit_callbacks: Any,
) -> None:
    doc, v = _waiting(gateway, django_capture_on_commit_callbacks)
    accept(doc, v)
    with django_capture_on_commit_callbacks(execute=True):
        assert _post(doc, v, "call").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        r = _post(doc, v, "terminate", {"reason": "first_visit", "note": "初诊，建议门诊"})
    assert r.status_code == 200, r.json()
    out = r.json()
    assert out["status"] == "terminated" and out["terminate_reason_label"] == "初诊患者，不适合在线复诊"
    assert out["refund_fen"] == 3000
    order = order_of(v)
    assert order.status == Order.Status.REFUNDED and Refund.objects.get(order=order).source == "automatic"
    assert balanced(order)["received"] == 0
    v.refresh_from_db()
    card = Message.objects.get(conversation_id=v.conversation_id, kind=Message.Kind.CARD)
    assert card.body["card_type"] == "consult_advice" and "门诊" in card.body["data"]["advice"]
    # The patient is told (the outbox row, in-app and the first external channel).
    assert Notification.objects.filter(user=v.account, dedupe_key=f"consult:{v.public_id}:terminated:inapp").exists()
    audit = AuditEvent.objects.get(action="consult.visit_terminate", object_id=v.public_id)
    assert audit.detail["reason"] == "first_visit"
    # Terminated is final: nothing more.
    assert _post(doc, v, "end").json()["code"] == ConsultCode.TRANSITION_REFUSED


def test_terminate_a_waiting_visit_frees_the_place_without_a_card(
    gateway: Any,  # noqa: F811
    django_capture_on_commit_callbacks: Any,
) -> None:
    doc, v = _waiting(gateway, django_capture_on_commit_callbacks)
    r = _post(doc, v, "terminate", {"reason": "bogus"})
    assert r.status_code == 422
    with django_capture_on_commit_callbacks(execute=True):
        r = _post(doc, v, "terminate", {"reason": "needs_exam"})
    assert r.status_code == 200
    assert Slot.objects.get(pk=v.slot_id).booked == 0
    assert order_of(v).status == Order.Status.REFUNDED
    assert not Message.objects.exists()
    assert Notification.objects.filter(user=v.account).exists()
