"""The doctor's schedule (issue 13): one slot, a week template (all or nothing), the
capacity never below booked, R5 (an unqualified doctor publishes nothing), another
doctor's slot answers 404; and the sweep of accepted visits never called in
(cancelled with a full refund and a notice), by time travel."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.commerce.models import Order
from apps.consultations import services
from apps.consultations.errors import ConsultCode
from apps.consultations.models import Slot, Visit
from apps.notifications.models import Notification
from tests.commerce.conftest import balanced, gateway  # noqa: F401  (fixture)

from .test_booking_support import accept, book, booker, department, doctor, order_of, pay, slot

pytestmark = pytest.mark.django_db
BJ = ZoneInfo("Asia/Shanghai")


@pytest.fixture(autouse=True)
def _refunds_succeed(gateway: Any) -> None:  # noqa: F811
    gateway.refund_answer = "success"


def _at(days: int, hour: int, minute: int = 0) -> dt.datetime:
    day = timezone.now().astimezone(BJ).date() + dt.timedelta(days=days)
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=BJ)


def _one(kind: str = "text", days: int = 2, start: int = 9, end: int = 11, capacity: int = 5) -> dict[str, Any]:
    return {
        "kind": kind,
        "starts_at": _at(days, start).isoformat(),
        "ends_at": _at(days, end).isoformat(),
        "capacity": capacity,
    }


def test_a_doctor_adds_one_slot_and_sees_it_in_their_week() -> None:
    doc = doctor()
    api = doc.persona.api()
    r = api.post("/consultations/me/slots", _one(capacity=6))
    assert r.status_code == 201, r.json()
    body = r.json()
    assert body["capacity"] == 6 and body["booked"] == 0 and body["status"] == "open"
    assert body["status_label"] == "可预约" and body["kind_label"] == "图文问诊"
    slot_row = Slot.objects.get(pk=body["id"])
    assert slot_row.doctor_id == doc.profile.pk and slot_row.starts_at == _at(2, 9)
    week = api.get("/consultations/me/slots", **{"from": _at(0, 0).date().isoformat(), "days": 7}).json()
    assert [s["id"] for s in week] == [body["id"]]
    assert AuditEvent.objects.filter(action="consult.slot_create", object_id=str(slot_row.pk)).exists()
    # Patients see it bookable.
    assert [s["remaining"] for s in api.get(f"/consultations/doctors/{doc.profile.pk}/slots").json()] == [6]


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        (_one(days=-1), ConsultCode.SLOT_IN_PAST, "starts_at"),
        (_one(start=11, end=9), ConsultCode.SLOT_ENDS_BEFORE_START, "ends_at"),
        (_one(start=8, end=13), ConsultCode.SLOT_TOO_LONG, "ends_at"),
        (_one(capacity=0), "validation_error", "capacity"),
        (_one(capacity=51), "validation_error", "capacity"),
    ],
)
def test_an_invalid_slot_is_refused_with_its_field_and_nothing_written(
    body: dict[str, Any], code: str, field: str
) -> None:
    doc = doctor()
    r = doc.persona.api().post("/consultations/me/slots", body)
    assert r.json()["code"] == code and r.json()["detail"]["field"] == field, r.json()
    assert r.status_code in (409, 422)
    assert not Slot.objects.filter(doctor=doc.profile).exists()


def test_an_overlapping_open_slot_of_the_same_kind_is_refused_and_nothing_written() -> None:
    doc = doctor()
    api = doc.persona.api()
    assert api.post("/consultations/me/slots", _one(start=9, end=11)).status_code == 201
    r = api.post("/consultations/me/slots", _one(start=10, end=12))
    assert r.status_code == 409 and r.json()["code"] == ConsultCode.SLOT_OVERLAP
    assert "重叠" in r.json()["message"] and len(r.json()["detail"]["conflicts"]) == 1
    assert Slot.objects.filter(doctor=doc.profile).count() == 1
    # Another kind, or touching end to start, is fine; a closed slot no longer blocks.
    assert api.post("/consultations/me/slots", _one(kind="video", start=10, end=12)).status_code == 201
    assert api.post("/consultations/me/slots", _one(start=11, end=12)).status_code == 201
    first = Slot.objects.get(doctor=doc.profile, kind="text", starts_at=_at(2, 9))
    assert api.post(f"/consultations/slots/{first.pk}/close").status_code == 200
    assert api.post("/consultations/me/slots", _one(start=9, end=10)).status_code == 201
    # Another doctor's slots do not collide.
    assert doctor().persona.api().post("/consultations/me/slots", _one(start=9, end=11)).status_code == 201


def _template(**over: Any) -> dict[str, Any]:
    monday = _at(0, 0).date() + dt.timedelta(days=7 - _at(0, 0).date().weekday())  # next Monday
    return {
        "kind": "text",
        "weekdays": [1, 3, 5],
        "start_time": "09:00",
        "end_time": "11:30",
        "capacity": 8,
        "from_date": monday.isoformat(),
        "weeks": 2,
    } | over


def test_a_week_template_creates_every_slot_in_beijing_time() -> None:
    doc = doctor()
    r = doc.persona.api().post("/consultations/me/slots/batch", _template())
    assert r.status_code == 201, r.json()
    assert r.json()["created"] == 6
    slots = list(Slot.objects.filter(doctor=doc.profile).order_by("starts_at"))
    assert len(slots) == 6 and {s.capacity for s in slots} == {8}
    local = [s.starts_at.astimezone(BJ) for s in slots]
    assert {t.isoweekday() for t in local} == {1, 3, 5}
    assert {(t.hour, t.minute) for t in local} == {(9, 0)}
    assert {(s.ends_at - s.starts_at) for s in slots} == {dt.timedelta(hours=2, minutes=30)}
    ev = AuditEvent.objects.get(action="consult.slot_batch_create")
    assert ev.detail["count"] == 6 and ev.detail["weeks"] == 2


def test_a_week_template_with_one_overlap_writes_nothing_and_lists_the_conflicts() -> None:
    doc = doctor()
    api = doc.persona.api()
    t = _template()
    wednesday = dt.date.fromisoformat(t["from_date"]) + dt.timedelta(days=9)  # the 2nd week's Wednesday
    existing = Slot.objects.create(
        doctor=doc.profile,
        kind="text",
        starts_at=dt.datetime.combine(wednesday, dt.time(10, 0), tzinfo=BJ),
        ends_at=dt.datetime.combine(wednesday, dt.time(12, 0), tzinfo=BJ),
        capacity=3,
    )
    r = api.post("/consultations/me/slots/batch", t)
    assert r.status_code == 409 and r.json()["code"] == ConsultCode.SLOT_OVERLAP, r.json()
    conflicts = r.json()["detail"]["conflicts"]
    assert [c["slot_id"] for c in conflicts] == [existing.pk]
    assert list(Slot.objects.filter(doctor=doc.profile)) == [existing]
    assert not AuditEvent.objects.filter(action="consult.slot_batch_create").exists()
    # A template reaching into the past is refused whole too.
    past = _template(from_date=(_at(0, 0).date() - dt.timedelta(days=7)).isoformat(), weekdays=[1, 2, 3, 4, 5, 6, 7])
    r = api.post("/consultations/me/slots/batch", past)
    assert r.status_code == 422 and r.json()["code"] == ConsultCode.SLOT_IN_PAST
    assert list(Slot.objects.filter(doctor=doc.profile)) == [existing]
    bads: list[dict[str, Any]] = [
        {"weeks": 5},
        {"weeks": 0},
        {"weekdays": []},
        {"end_time": "08:00"},
        {"end_time": "13:01"},
    ]
    for bad in bads:
        r = api.post("/consultations/me/slots/batch", _template(**bad))
        assert r.status_code in (409, 422), (bad, r.json())
    assert list(Slot.objects.filter(doctor=doc.profile)) == [existing]


def test_capacity_changes_but_never_below_booked(gateway: Any) -> None:  # noqa: F811
    doc = doctor()
    s = slot(doc, capacity=5)
    book(booker(), doc, s)
    book(booker(), doc, s)
    api = doc.persona.api()
    r = api.patch(f"/consultations/slots/{s.pk}", {"capacity": 1})
    assert r.status_code == 409 and r.json()["code"] == ConsultCode.CAPACITY_BELOW_BOOKED
    assert "2人" in r.json()["message"]
    s.refresh_from_db()
    assert s.capacity == 5
    r = api.patch(f"/consultations/slots/{s.pk}", {"capacity": 2})
    assert r.status_code == 200 and r.json()["capacity"] == 2 and r.json()["booked"] == 2
    ev = AuditEvent.objects.get(action="consult.slot_capacity")
    assert ev.detail == {"capacity_from": 5, "capacity_to": 2}
    assert api.patch(f"/consultations/slots/{s.pk}", {"capacity": 51}).status_code == 422
    s.refresh_from_db()
    assert s.capacity == 2


def test_a_kind_the_doctor_does_not_offer_is_refused() -> None:
    doc = doctor(video_fen=0)
    r = doc.persona.api().post("/consultations/me/slots", _one(kind="video"))
    assert r.status_code == 409 and r.json()["code"] == ConsultCode.KIND_NOT_OFFERED
    assert r.json()["detail"]["field"] == "kind"
    assert not Slot.objects.filter(doctor=doc.profile).exists()


def test_an_unqualified_doctor_cannot_publish_slots() -> None:
    doc = doctor(years=1)
    api = doc.persona.api()
    r = api.post("/consultations/me/slots", _one())
    assert r.status_code == 409 and r.json()["code"] == ConsultCode.DOCTOR_NOT_QUALIFIED
    r = api.post("/consultations/me/slots/batch", _template())
    assert r.status_code == 409 and r.json()["code"] == ConsultCode.DOCTOR_NOT_QUALIFIED
    assert not Slot.objects.filter(doctor=doc.profile).exists()


def test_another_doctors_slot_is_404_and_other_roles_are_refused() -> None:
    doc = doctor()
    s = slot(doc, capacity=4)
    other = doctor(department("endocrinology", "内分泌科")).persona.api()
    assert other.patch(f"/consultations/slots/{s.pk}", {"capacity": 9}).status_code == 404
    assert other.post(f"/consultations/slots/{s.pk}/close").status_code == 404
    assert other.get("/consultations/me/slots").json() == []
    s.refresh_from_db()
    assert s.capacity == 4 and s.status == Slot.Status.OPEN
    patient = booker().account.api()
    assert patient.post("/consultations/me/slots", _one()).status_code == 403
    assert patient.get("/consultations/me/slots").status_code == 403
    assert Slot.objects.count() == 1


# --- the sweep of accepted visits never called in ----------------------------------------------------


def test_an_accepted_visit_not_called_in_is_cancelled_refunded_and_the_patient_told(
    gateway: Any,  # noqa: F811
    django_capture_on_commit_callbacks: Any,
) -> None:
    doc = doctor()
    s = slot(doc, hours_ahead=0)  # from now to an hour from now
    b = booker()
    v = accept(doc, pay(gateway, book(b, doc, s), django_capture_on_commit_callbacks))
    assert v.status == Visit.Status.ACCEPTED
    # Within the grace after the slot's end: untouched.
    assert services.visits_expire_uncalled(now=s.ends_at + dt.timedelta(minutes=29)) == 0
    v.refresh_from_db()
    assert v.status == Visit.Status.ACCEPTED and order_of(v).status != Order.Status.REFUNDED
    with django_capture_on_commit_callbacks(execute=True):
        assert services.visits_expire_uncalled(now=s.ends_at + dt.timedelta(minutes=31)) == 1
    v.refresh_from_db()
    assert v.status == Visit.Status.CANCELLED and v.end_reason == "not_called"
    assert order_of(v).status == Order.Status.REFUNDED
    assert Notification.objects.filter(user=b.account.user, template="notice").exists()
    assert AuditEvent.objects.filter(action="consult.visit_cancel", object_id=v.public_id).exists()
    # Re-running finds nothing more.
    assert services.visits_expire_uncalled(now=s.ends_at + dt.timedelta(hours=2)) == 0


def test_a_department_visit_is_swept_after_its_acceptance_and_a_waiting_visit_never(
    gateway: Any,  # noqa: F811
    django_capture_on_commit_callbacks: Any,
) -> None:
    doc = doctor()
    s = slot(doc, hours_ahead=0)
    waiting = pay(gateway, book(booker(), doc, s), django_capture_on_commit_callbacks)
    queued = pay(
        gateway, book(booker(), None, None, dept=doc.profile.department.code), django_capture_on_commit_callbacks
    )
    r = doc.persona.api().post(f"/consultations/visits/{queued.public_id}/take")
    assert r.status_code == 200, r.json()
    queued = accept(doc, queued)
    assert queued.accepted_at is not None
    assert services.visits_expire_uncalled(now=queued.accepted_at + dt.timedelta(minutes=29)) == 0
    with django_capture_on_commit_callbacks(execute=True):
        assert services.visits_expire_uncalled(now=queued.accepted_at + dt.timedelta(minutes=31)) == 1
    queued.refresh_from_db()
    waiting.refresh_from_db()
    assert queued.status == Visit.Status.CANCELLED and order_of(queued).status == Order.Status.REFUNDED
    # A waiting (not accepted) visit is not this sweep's, even long after its slot.
    assert waiting.status == Visit.Status.WAITING and order_of(waiting).status != Order.Status.REFUNDED


def test_the_periodic_task_runs_the_call_in_sweep(
    gateway: Any,  # noqa: F811
    django_capture_on_commit_callbacks: Any,
) -> None:
    from apps.consultations.tasks import expire_uncalled_visits

    doc = doctor()
    s = slot(doc, hours_ahead=0)
    v = accept(doc, pay(gateway, book(booker(), doc, s), django_capture_on_commit_callbacks))
    assert expire_uncalled_visits.call_local() == 0  # its slot has not even ended
    Slot.objects.filter(pk=s.pk).update(
        starts_at=timezone.now() - dt.timedelta(hours=2), ends_at=timezone.now() - dt.timedelta(minutes=31)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert expire_uncalled_visits.call_local() == 1
    v.refresh_from_db()
    assert v.status == Visit.Status.CANCELLED and order_of(v).status == Order.Status.REFUNDED


def test_a_sysadmin_manages_any_doctors_schedule_by_doctor_id(
    django_capture_on_commit_callbacks: Any,
) -> None:
    from apps.accounts.roles import Role
    from tests.conftest import make_staff

    doc = doctor()
    admin = make_staff(Role.SYSADMIN, "schedadmin").api()
    q = f"?doctor_id={doc.profile.pk}"
    r = admin.post(f"/consultations/me/slots{q}", _one())
    assert r.status_code == 201, r.json()
    assert Slot.objects.get(pk=r.json()["id"]).doctor_id == doc.profile.pk
    assert admin.post(f"/consultations/me/slots/batch{q}", _template(weeks=1, kind="video")).status_code == 201
    assert [s["id"] for s in admin.get("/consultations/me/slots", doctor_id=doc.profile.pk, days=31).json()] == list(
        Slot.objects.filter(doctor=doc.profile).order_by("starts_at", "id").values_list("pk", flat=True)
    )
    assert admin.patch(f"/consultations/slots/{r.json()['id']}", {"capacity": 9}).json()["capacity"] == 9
    with django_capture_on_commit_callbacks(execute=True):
        assert admin.post(f"/consultations/slots/{r.json()['id']}/close").json()["status"] == "closed"
    # Without a doctor the sysadmin has no schedule of their own; a doctor's doctor_id is ignored.
    assert admin.post("/consultations/me/slots", _one(days=3)).status_code == 404
    other = doctor(department("endocrinology", "内分泌科"))
    r = other.persona.api().post(f"/consultations/me/slots{q}", _one(days=3))
    assert r.status_code == 201 and Slot.objects.get(pk=r.json()["id"]).doctor_id == other.profile.pk
