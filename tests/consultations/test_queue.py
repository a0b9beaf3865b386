"""The waiting room: positions and estimated waits in a doctor's queue (slot start,
then paid time), the department queue ("next available doctor") an online doctor
of the department takes from, and the to-dos of both sides."""

from __future__ import annotations

from typing import Any

import pytest

from apps.consultations.errors import ConsultCode
from apps.consultations.models import Visit
from apps.todos.registry import todos_for
from tests.commerce.conftest import gateway  # noqa: F401  (fixture)

from .test_booking_support import book, booker, department, doctor, pay, slot

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _refunds_succeed(gateway: Any) -> None:  # noqa: F811
    gateway.refund_answer = "success"


def test_positions_and_waits_follow_slot_start_then_payment(
    gateway: Any,  # noqa: F811
    django_capture_on_commit_callbacks: Any,
) -> None:
    doc = doctor()
    late, early = slot(doc, hours_ahead=5), slot(doc, hours_ahead=2)
    bookers = [booker() for _ in range(3)]
    a = pay(gateway, book(bookers[0], doc, late), django_capture_on_commit_callbacks)
    b = pay(gateway, book(bookers[1], doc, early), django_capture_on_commit_callbacks)
    c = pay(gateway, book(bookers[2], doc, early), django_capture_on_commit_callbacks)
    queue = {
        v.public_id: bk.account.api().get(f"/consultations/visits/{v.public_id}").json()["queue"]
        for v, bk in ((a, bookers[0]), (b, bookers[1]), (c, bookers[2]))
    }
    assert queue[b.public_id] == {"position": 1, "ahead": 0, "estimated_wait_minutes": 0}
    assert queue[c.public_id] == {"position": 2, "ahead": 1, "estimated_wait_minutes": 10}
    assert queue[a.public_id] == {"position": 3, "ahead": 2, "estimated_wait_minutes": 20}
    assert bookers[1].account.api().post(f"/consultations/visits/{b.public_id}/cancel").status_code == 200
    out = bookers[0].account.api().get(f"/consultations/visits/{a.public_id}").json()
    assert out["queue"]["position"] == 2
    bench = doc.persona.api().get("/consultations/workbench").json()
    assert [x["id"] for x in bench["queue"]] == [c.public_id, a.public_id]
    assert bench["today"]["waiting"] == 2 and bench["is_online"] is True
    assert bench["queue"][0]["patient"]["name"].startswith("张") and "*" in bench["queue"][0]["patient"]["name"]
    kinds = {t.kind: t.count for t in todos_for(doc.user)[0]}
    assert kinds["consult.to_accept"] == 2


def test_a_department_visit_waits_for_the_next_available_doctor(
    gateway: Any,  # noqa: F811
    django_capture_on_commit_callbacks: Any,
) -> None:
    cardio = department()
    first = doctor(cardio)
    second = doctor(cardio)
    offline = doctor(cardio, online=False)
    elsewhere = doctor(department("respiratory", "呼吸内科"))
    bk = booker()
    v = book(bk, None, None, dept="cardiology")
    assert v.doctor_id is None and v.slot_id is None and v.price_fen == 3000
    assert {t.kind for t in todos_for(bk.account.user)[0]} == {"consult.to_pay"}
    v = pay(gateway, v, django_capture_on_commit_callbacks)
    out = bk.account.api().get(f"/consultations/visits/{v.public_id}").json()
    assert out["doctor"] is None and out["queue"]["position"] == 1 and out["allowed_actions"] == ["cancel"]
    # The doctors of the department see it; another department's does not.
    assert [x["id"] for x in first.persona.api().get("/consultations/visits", scope="open").json()] == [v.public_id]
    assert elsewhere.persona.api().get("/consultations/visits").json() == []
    assert elsewhere.persona.api().post(f"/consultations/visits/{v.public_id}/take").status_code == 403
    r = offline.persona.api().post(f"/consultations/visits/{v.public_id}/take")
    assert r.status_code == 409 and r.json()["code"] == ConsultCode.DOCTOR_UNAVAILABLE
    # Accepting before taking: refused.
    assert (
        first.persona.api()
        .post(f"/consultations/visits/{v.public_id}/accept", {"confirm_followup": True})
        .json()["code"]
        == ConsultCode.NOT_YOUR_VISIT
    )
    r = first.persona.api().post(f"/consultations/visits/{v.public_id}/take")
    assert r.status_code == 200 and r.json()["doctor"]["id"] == first.profile.pk
    assert r.json()["queue"]["position"] == 1
    r = second.persona.api().post(f"/consultations/visits/{v.public_id}/take")
    assert r.status_code == 403 and r.json()["code"] == ConsultCode.NOT_YOUR_VISIT
    v.refresh_from_db()
    assert v.doctor_id == first.profile.pk and v.status == Visit.Status.WAITING
    # One open visit per patient and department.
    with pytest.raises(Exception) as exc:
        book(bk, None, None, dept="cardiology")
    assert getattr(exc.value, "code", "") == ConsultCode.DUPLICATE_OPEN_VISIT
