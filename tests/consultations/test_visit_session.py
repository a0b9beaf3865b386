"""A visit on its timed session (apps/consultations/timing.py): the call-in opens it with
the kind's duration; the server's deadline ends the visit (no client connected) and closes
its chat; the one extension is billed as an order; the doctor's end and terminate end the
session too."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from asgiref.sync import async_to_sync

from apps.commerce.models import Order, OrderItem
from apps.consultations.errors import ConsultCode
from apps.consultations.models import Visit
from apps.im.models import Conversation
from apps.timed import clock as timed_clock
from apps.timed.clock import Clock
from apps.timed.models import TimedSession
from tests.commerce.conftest import gateway  # noqa: F401  (fixture)

from .test_booking_support import accept, book, booker, doctor, order_of, pay, slot

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _no_process_clock() -> Any:
    yield
    if timed_clock._clock is not None:
        timed_clock._clock.uninstall()


def _in_progress(gw: Any, capture: Any, *, kind: str = "video") -> tuple[Any, Any, Visit]:
    doc = doctor()
    b = booker()
    v = pay(gw, book(b, doc, slot(doc, kind=kind), kind=kind), capture)
    accept(doc, v)
    with capture(execute=True):
        r = doc.persona.api().post(f"/consultations/visits/{v.public_id}/call")
    assert r.status_code == 200, r.json()
    v.refresh_from_db()
    return doc, b, v


def test_the_call_opens_the_session_and_the_deadline_ends_the_visit_with_no_client(
    gateway: Any,  # noqa: F811
    django_capture_on_commit_callbacks: Any,
    settings: Any,
) -> None:
    doc, b, v = _in_progress(gateway, django_capture_on_commit_callbacks)
    session = TimedSession.objects.get(pk=v.timed_session_id)
    assert (session.owner_kind, session.owner_id, session.status) == ("consultation", v.public_id, "running")
    assert session.deadline - session.started_at == dt.timedelta(seconds=settings.CONSULT_SESSION_SECONDS["video"])
    assert session.room_id == f"conv-{v.conversation_id}"
    assert f"visit:{v.public_id}" in session.topics
    out = b.account.api().get(f"/consultations/visits/{v.public_id}").json()
    assert out["session"]["status"] == "running" and out["session"]["can_extend"] is True
    assert 0 < out["session"]["remaining_seconds"] <= settings.CONSULT_SESSION_SECONDS["video"]

    clock = Clock()
    deadline = session.deadline.timestamp()
    assert async_to_sync(clock.step)(deadline - 300).warnings == [(session.pk, 5)]
    assert async_to_sync(clock.step)(deadline - 60).warnings == [(session.pk, 1)]
    assert Visit.objects.get(pk=v.pk).status == Visit.Status.IN_PROGRESS
    with django_capture_on_commit_callbacks(execute=True):
        assert async_to_sync(clock.step)(deadline + 0.01).ended == [session.pk]
    v.refresh_from_db()
    assert v.status == Visit.Status.ENDED and v.end_reason == "deadline"
    assert Conversation.objects.get(pk=v.conversation_id).closed_at is not None
    assert order_of(v).status == Order.Status.COMPLETED  # the service was delivered
    out = b.account.api().get(f"/consultations/visits/{v.public_id}").json()
    assert out["status"] == "ended" and out["end_reason_label"] == "问诊时间已到"
    assert out["session"]["status"] == "ended" and out["session"]["can_extend"] is False
    # Past the end the doctor can neither extend nor end it again.
    assert doc.persona.api().post(f"/consultations/visits/{v.public_id}/extend").status_code == 409
    assert doc.persona.api().post(f"/consultations/visits/{v.public_id}/end").status_code == 409


def test_one_extension_is_billed_once_and_a_second_is_refused_with_nothing_written(
    gateway: Any,  # noqa: F811
    django_capture_on_commit_callbacks: Any,
    settings: Any,
) -> None:
    doc, b, v = _in_progress(gateway, django_capture_on_commit_callbacks)
    before = TimedSession.objects.get(pk=v.timed_session_id).deadline
    # The patient cannot extend; nothing is billed.
    assert b.account.api().post(f"/consultations/visits/{v.public_id}/extend").status_code == 403
    assert not OrderItem.objects.filter(kind="consultation_extension").exists()
    r = doc.persona.api().post(f"/consultations/visits/{v.public_id}/extend")
    assert r.status_code == 200, r.json()
    session = TimedSession.objects.get(pk=v.timed_session_id)
    assert session.deadline - before == dt.timedelta(minutes=settings.CONSULT_EXTENSION_MINUTES)
    assert r.json()["session"]["extended"] is True and r.json()["session"]["can_extend"] is False
    item = OrderItem.objects.get(kind="consultation_extension", ref=v.public_id)
    assert item.payable_fen == settings.CONSULT_EXTENSION_PRICE_FEN
    assert item.order.patient_id == v.patient_id and item.order.status == Order.Status.CREATED
    again = doc.persona.api().post(f"/consultations/visits/{v.public_id}/extend")
    assert again.status_code == 409 and again.json()["code"] == ConsultCode.EXTENSION_USED
    assert OrderItem.objects.filter(kind="consultation_extension").count() == 1
    assert TimedSession.objects.get(pk=v.timed_session_id).deadline == session.deadline


def test_the_doctors_end_and_terminate_end_the_session(
    gateway: Any,  # noqa: F811
    django_capture_on_commit_callbacks: Any,
) -> None:
    doc, _b, v = _in_progress(gateway, django_capture_on_commit_callbacks, kind="text")
    with django_capture_on_commit_callbacks(execute=True):
        assert doc.persona.api().post(f"/consultations/visits/{v.public_id}/end").status_code == 200
    s = TimedSession.objects.get(pk=v.timed_session_id)
    assert (s.status, s.end_reason) == ("ended", "ended")
    assert Conversation.objects.get(pk=v.conversation_id).closed_at is not None

    doc2, _b2, v2 = _in_progress(gateway, django_capture_on_commit_callbacks, kind="text")
    with django_capture_on_commit_callbacks(execute=True):
        r = doc2.persona.api().post(
            f"/consultations/visits/{v2.public_id}/terminate", {"reason": "condition_changed", "note": "需线下检查"}
        )
    assert r.status_code == 200, r.json()
    s2 = TimedSession.objects.get(pk=v2.timed_session_id)
    assert (s2.status, s2.end_reason) == ("ended", "terminated")
    v2.refresh_from_db()
    assert v2.status == Visit.Status.TERMINATED and v2.end_reason == "terminated"
