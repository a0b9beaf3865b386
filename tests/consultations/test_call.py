"""Calling a patient in: the visit's conversation (kind visit, both members; its
media room ``conv-<id>``), the doctor <-> patient care relationship (reason visit,
from the consultation), in_progress; ending it delivers the order item."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from apps.care_team.models import CareRelationship
from apps.commerce.models import Order
from apps.consultations.errors import ConsultCode
from apps.consultations.models import Visit
from apps.im.models import Conversation, Member
from tests.commerce.conftest import gateway  # noqa: F401  (fixture)

from .test_booking_support import accept, book, booker, doctor, order_of, pay, slot

pytestmark = pytest.mark.django_db


def test_call_opens_the_conversation_and_the_care_relationship_and_end_delivers(
    gateway: Any,  # noqa: F811
    django_capture_on_commit_callbacks: Any,
) -> None:
    doc = doctor()
    b = booker()
    v = pay(gateway, book(b, doc, slot(doc)), django_capture_on_commit_callbacks)
    api = doc.persona.api()
    r = api.post(f"/consultations/visits/{v.public_id}/call")
    assert r.status_code == 409 and r.json()["code"] == ConsultCode.TRANSITION_REFUSED  # accept first
    assert not Conversation.objects.exists() and not CareRelationship.objects.exists()
    accept(doc, v)
    assert b.account.api().post(f"/consultations/visits/{v.public_id}/call").status_code == 403  # not the patient
    with django_capture_on_commit_callbacks(execute=True):
        r = api.post(f"/consultations/visits/{v.public_id}/call")
    assert r.status_code == 200, r.json()
    out = r.json()
    conv = Conversation.objects.get()
    assert out["status"] == "in_progress" and out["conversation_id"] == conv.pk and out["room_id"] == f"conv-{conv.pk}"
    assert (conv.kind, conv.ref_type, conv.ref_id) == ("visit", "visit", v.public_id)
    members = set(Member.objects.filter(conversation=conv).values_list("user_id", flat=True))
    assert members == {doc.user.pk, b.account.user.pk}
    rel = CareRelationship.objects.get()
    assert (rel.staff_id, rel.patient_id, rel.reason) == (doc.user.pk, b.patient.pk, "visit")
    assert (rel.source_type, rel.source_id) == ("consultation", v.public_id)
    assert abs(rel.until - (timezone.now() + dt.timedelta(days=30))) < dt.timedelta(minutes=1)
    assert b.account.api().get(f"/consultations/visits/{v.public_id}").json()["called_at"]
    # Ending: ended, and the order is complete (the service was delivered).
    with django_capture_on_commit_callbacks(execute=True):
        r = api.post(f"/consultations/visits/{v.public_id}/end")
    assert r.status_code == 200 and r.json()["status"] == "ended" and r.json()["end_reason_label"] == "医生结束问诊"
    assert order_of(v).status == Order.Status.COMPLETED
    v.refresh_from_db()
    assert v.status == Visit.Status.ENDED and v.ended_at is not None
    assert api.post(f"/consultations/visits/{v.public_id}/end").status_code == 409
