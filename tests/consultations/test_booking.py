"""Booking (issue 13): to a doctor's slot or a department queue, paid through
commerce; R1 (a prior record on file), R3 (a guardian under 6), R5 (a qualified
doctor); one open visit per patient and doctor; cancel and reschedule by rule; an
unpaid visit expires and frees its place; a doctor closing a slot refunds."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from apps.commerce.models import Order, Refund
from apps.consultations import services
from apps.consultations.errors import ConsultCode
from apps.consultations.models import Slot, Visit
from apps.notifications.models import Notification
from hub.errors import ApiError
from tests.commerce.conftest import balanced, gateway  # noqa: F401  (fixture)

from .test_booking_support import accept, book, booker, department, doctor, order_of, pay, slot

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _refunds_succeed(gateway: Any) -> None:  # noqa: F811
    gateway.refund_answer = "success"  # the provider refunds at once (its notice is tested in commerce)


def _code(exc: pytest.ExceptionInfo[ApiError]) -> str:
    return str(exc.value.code)


def test_booking_a_slot_through_the_api_orders_and_paying_queues_the_visit(
    gateway: Any,  # noqa: F811
    django_capture_on_commit_callbacks: Any,
) -> None:
    doc = doctor()
    s = slot(doc, capacity=3)
    b = booker()
    api = b.account.api()
    r = api.post(
        "/consultations/visits",
        {
            "patient_id": b.patient.pk,
            "kind": "text",
            "doctor_id": doc.profile.pk,
            "slot_id": s.pk,
            "chief_complaint": "高血压复诊，近期头晕",
            "prior_record_id": b.record.public_id,
        },
    )
    assert r.status_code == 201, r.json()
    body = r.json()
    assert body["status"] == "pending_payment" and body["status_label"] == "待支付"
    assert body["price_fen"] == 3000 and body["order_no"] and body["allowed_actions"] == ["cancel"]
    assert body["doctor"]["licence_no"] == "110440000000001"  # R5: shown
    order = Order.objects.get(order_no=body["order_no"])
    assert order.payable_fen == 3000 and order.items.get().kind == "consultation"
    s.refresh_from_db()
    assert s.booked == 1
    visit = pay(gateway, Visit.objects.get(public_id=body["id"]), django_capture_on_commit_callbacks)
    assert visit.status == Visit.Status.WAITING and visit.queued_at is not None
    out = api.get(f"/consultations/visits/{visit.public_id}").json()
    assert out["queue"] == {"position": 1, "ahead": 0, "estimated_wait_minutes": 0}
    assert out["allowed_actions"] == ["reschedule", "cancel"]
    slots = api.get(f"/consultations/doctors/{doc.profile.pk}/slots").json()
    assert [x["remaining"] for x in slots] == [2]


def test_without_a_prior_record_booking_is_refused_and_nothing_is_written(gateway: Any) -> None:  # noqa: F811
    doc = doctor()
    s = slot(doc)
    b = booker(record=None)
    with pytest.raises(ApiError) as exc:
        book(b, doc, s)
    assert _code(exc) == ConsultCode.NO_PRIOR_RECORD
    s.refresh_from_db()
    assert s.booked == 0 and not Visit.objects.exists() and not Order.objects.exists() and gateway.prepays == []


def test_an_upload_pending_review_may_book_but_a_rejected_one_may_not(gateway: Any) -> None:  # noqa: F811
    doc = doctor()
    s = slot(doc)
    pending = booker(record="upload", review="pending")
    assert book(pending, doc, s).status == Visit.Status.PENDING_PAYMENT
    rejected = booker(record="upload", review="rejected")
    with pytest.raises(ApiError) as exc:
        book(rejected, doc, s)
    assert _code(exc) == ConsultCode.NO_PRIOR_RECORD


def test_a_child_under_six_needs_a_guardian(gateway: Any) -> None:  # noqa: F811
    doc = doctor()
    s = slot(doc)
    child = booker(birth=timezone.localdate() - dt.timedelta(days=365 * 4), name="张小明")
    with pytest.raises(ApiError) as exc:
        book(child, doc, s, guardian_name="张伟")
    assert _code(exc) == ConsultCode.GUARDIAN_REQUIRED
    assert not Visit.objects.exists()
    v = book(child, doc, s, guardian_name="张伟", guardian_relation="父亲", guardian_phone="13800138001")
    assert v.guardian_name == "张伟"


@pytest.mark.parametrize(("years", "licence"), [(2, "110440000000001"), (10, "")])
def test_an_unqualified_doctor_is_not_listed_not_bookable_and_cannot_go_online(
    gateway: Any,  # noqa: F811
    years: int,
    licence: str,
) -> None:
    doc = doctor(years=years, licence=licence, online=False)
    s = slot(doc)
    b = booker()
    with pytest.raises(ApiError) as exc:
        book(b, doc, s)
    assert _code(exc) == ConsultCode.DOCTOR_NOT_QUALIFIED
    assert b.account.api().get("/consultations/doctors").json() == []
    r = doc.persona.api().post("/consultations/me/online", {"online": True})
    assert r.status_code == 409 and r.json()["code"] == ConsultCode.DOCTOR_NOT_QUALIFIED
    doc.profile.refresh_from_db()
    assert not doc.profile.is_online


def test_one_open_visit_per_patient_and_doctor_and_a_full_or_closed_slot(gateway: Any) -> None:  # noqa: F811
    doc = doctor()
    s = slot(doc, capacity=1)
    b = booker()
    book(b, doc, s)
    with pytest.raises(ApiError) as exc:
        book(b, doc, slot(doc))
    assert _code(exc) == ConsultCode.DUPLICATE_OPEN_VISIT
    with pytest.raises(ApiError) as exc:
        book(booker(), doc, s)
    assert _code(exc) == ConsultCode.SLOT_FULL
    closed = slot(doc)
    Slot.objects.filter(pk=closed.pk).update(status=Slot.Status.CLOSED)
    with pytest.raises(ApiError) as exc:
        book(booker(), doc, closed)
    assert _code(exc) == ConsultCode.SLOT_CLOSED
    assert Visit.objects.count() == 1 and Order.objects.count() == 1


def test_video_not_offered(gateway: Any) -> None:  # noqa: F811
    doc = doctor(video_fen=0)
    with pytest.raises(ApiError) as exc:
        book(booker(), doc, slot(doc, kind="video"), kind="video")
    assert _code(exc) == ConsultCode.KIND_NOT_OFFERED


def test_cancel_before_accepting_refunds_in_full_and_frees_the_place_after_it_is_too_late(
    gateway: Any,  # noqa: F811
    django_capture_on_commit_callbacks: Any,
) -> None:
    doc = doctor()
    s = slot(doc)
    b = booker()
    v = pay(gateway, book(b, doc, s), django_capture_on_commit_callbacks)
    api = b.account.api()
    with django_capture_on_commit_callbacks(execute=True):
        r = api.post(f"/consultations/visits/{v.public_id}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    order = order_of(v)
    assert order.status == Order.Status.REFUNDED and order.refunded_fen == 3000
    assert Refund.objects.get(order=order).source == Refund.Source.AUTOMATIC
    assert balanced(order)["received"] == 0
    s.refresh_from_db()
    assert s.booked == 0
    assert api.get(f"/consultations/visits/{v.public_id}").json()["refund_fen"] == 3000
    # After the doctor accepted: refused, nothing refunded.
    b2 = booker()
    v2 = accept(doc, pay(gateway, book(b2, doc, s), django_capture_on_commit_callbacks))
    r = b2.account.api().post(f"/consultations/visits/{v2.public_id}/cancel")
    assert r.status_code == 409 and r.json()["code"] == ConsultCode.CANCEL_TOO_LATE
    assert order_of(v2).status == Order.Status.FULFILLING and not Refund.objects.filter(order=order_of(v2)).exists()


def test_cancel_unpaid_closes_the_order(gateway: Any) -> None:  # noqa: F811
    doc = doctor()
    s = slot(doc)
    b = booker()
    v = book(b, doc, s)
    assert b.account.api().post(f"/consultations/visits/{v.public_id}/cancel").status_code == 200
    assert order_of(v).status == Order.Status.CANCELLED
    s.refresh_from_db()
    assert s.booked == 0


def test_reschedule_moves_the_place_at_most_twice(
    gateway: Any,  # noqa: F811
    django_capture_on_commit_callbacks: Any,
) -> None:
    doc = doctor()
    first, second, third, fourth = (slot(doc, hours_ahead=h) for h in (2, 4, 6, 8))
    b = booker()
    v = pay(gateway, book(b, doc, first), django_capture_on_commit_callbacks)
    api = b.account.api()
    for target in (second, third):
        r = api.post(f"/consultations/visits/{v.public_id}/reschedule", {"slot_id": target.pk})
        assert r.status_code == 200, r.json()
    r = api.post(f"/consultations/visits/{v.public_id}/reschedule", {"slot_id": fourth.pk})
    assert r.status_code == 409 and r.json()["code"] == ConsultCode.RESCHEDULE_LIMIT
    booked = {x.pk: x.booked for x in Slot.objects.all()}
    assert booked == {first.pk: 0, second.pk: 0, third.pk: 1, fourth.pk: 0}
    v.refresh_from_db()
    assert v.slot_id == third.pk and v.reschedule_count == 2
    # Another doctor's slot, or a video slot: refused, nothing moved.
    other = doctor()
    b2 = booker()
    v2 = pay(gateway, book(b2, doc, first), django_capture_on_commit_callbacks)
    for bad in (slot(other), slot(doc, kind="video")):
        r = b2.account.api().post(f"/consultations/visits/{v2.public_id}/reschedule", {"slot_id": bad.pk})
        assert r.status_code == 409 and r.json()["code"] == ConsultCode.SLOT_CLOSED
    first.refresh_from_db()
    assert first.booked == 1


def test_an_unpaid_visit_expires_and_frees_its_place(gateway: Any) -> None:  # noqa: F811
    doc = doctor()
    s = slot(doc, capacity=1)
    v = book(booker(), doc, s)
    assert services.visits_expire_unpaid() == 0  # not yet due
    later = timezone.now() + dt.timedelta(minutes=16)
    assert services.visits_expire_unpaid(now=later) == 1
    v.refresh_from_db()
    s.refresh_from_db()
    assert v.status == Visit.Status.CANCELLED and v.end_reason == "unpaid" and s.booked == 0
    assert order_of(v).status == Order.Status.CANCELLED
    assert services.visits_expire_unpaid(now=later) == 0  # re-run: nothing more
    assert book(booker(), doc, s).status == Visit.Status.PENDING_PAYMENT  # the place is bookable again


def test_a_payment_after_expiry_is_refunded(
    gateway: Any,  # noqa: F811
    django_capture_on_commit_callbacks: Any,
) -> None:
    doc = doctor()
    v = book(booker(), doc, slot(doc))
    Visit.objects.filter(pk=v.pk).update(created_at=timezone.now() - dt.timedelta(minutes=20))
    assert services.visits_expire_unpaid() == 1
    order = order_of(v)
    assert order.status == Order.Status.CREATED  # commerce's own expiry is later
    v = pay(gateway, v, django_capture_on_commit_callbacks)
    assert v.status == Visit.Status.CANCELLED
    order.refresh_from_db()
    assert order.status == Order.Status.REFUNDED and balanced(order)["received"] == 0


def test_a_doctor_closing_a_slot_cancels_refunds_and_tells_its_patients(
    gateway: Any,  # noqa: F811
    django_capture_on_commit_callbacks: Any,
) -> None:
    doc = doctor()
    s = slot(doc)
    paid = pay(gateway, book(b1 := booker(), doc, s), django_capture_on_commit_callbacks)
    unpaid = book(booker(), doc, s)
    with django_capture_on_commit_callbacks(execute=True):
        r = doc.persona.api().post(f"/consultations/slots/{s.pk}/close")
    assert r.status_code == 200 and r.json()["status"] == "closed"
    paid.refresh_from_db()
    unpaid.refresh_from_db()
    assert paid.status == unpaid.status == Visit.Status.CANCELLED
    assert order_of(paid).status == Order.Status.REFUNDED and order_of(unpaid).status == Order.Status.CANCELLED
    assert Notification.objects.filter(user=b1.account.user, template="notice").exists()
    s.refresh_from_db()
    assert s.booked == 0
    # Another doctor cannot close it (404, nothing changed).
    assert doctor().persona.api().post(f"/consultations/slots/{slot(doc).pk}/close").status_code == 404


def test_another_account_gets_404_and_another_doctor_is_refused(
    gateway: Any,  # noqa: F811
    django_capture_on_commit_callbacks: Any,
) -> None:
    doc = doctor()
    v = pay(gateway, book(booker(), doc, slot(doc)), django_capture_on_commit_callbacks)
    stranger = booker()
    api = stranger.account.api()
    assert api.get(f"/consultations/visits/{v.public_id}").status_code == 404
    assert api.post(f"/consultations/visits/{v.public_id}/cancel").status_code == 404
    assert api.get("/consultations/visits").json() == []
    other = doctor(department("endocrinology", "内分泌科"))
    oapi = other.persona.api()
    assert oapi.get(f"/consultations/visits/{v.public_id}").status_code == 404
    for path, body in (("step-up", {"method": "password", "password": other.persona.password}), ("accept", {})):
        r = oapi.post(f"/consultations/visits/{v.public_id}/{path}", body)
        assert r.status_code == 403 and r.json()["code"] == ConsultCode.NOT_YOUR_VISIT
    v.refresh_from_db()
    assert v.status == Visit.Status.WAITING and v.step_up_at is None


def test_browse_departments_doctors_and_detail(gateway: Any) -> None:  # noqa: F811
    doc = doctor()
    slot(doc)
    api = booker().account.api()
    depts = api.get("/consultations/departments").json()
    assert depts[0]["code"] == "cardiology" and depts[0]["doctor_count"] == 1
    rows = api.get("/consultations/doctors", department="cardiology", kind="text").json()
    assert [x["id"] for x in rows] == [doc.profile.pk] and rows[0]["next_slot_at"]
    detail = api.get(f"/consultations/doctors/{doc.profile.pk}").json()
    assert detail["years_of_practice"] == 10 and detail["recent_ratings"] == []
    assert api.get("/consultations/doctors/999999").status_code == 404


def test_a_refund_decided_in_commerce_cancels_the_waiting_visit(
    gateway: Any,  # noqa: F811
    django_capture_on_commit_callbacks: Any,
    settings: Any,
) -> None:
    from apps.commerce import services as commerce
    from tests.conftest import make_staff

    doc = doctor()
    s = slot(doc)
    b = booker()
    v = pay(gateway, book(b, doc, s), django_capture_on_commit_callbacks)
    refund = commerce.refund_request(user=b.account.user, order_no=v.order_no, reason="临时有事")
    staff = make_staff(settings.COMMERCE_REFUND_ROLES[0], "refunder")
    with django_capture_on_commit_callbacks(execute=True):
        commerce.refund_approve(staff=staff.user, refund_no=refund.refund_no)
    v.refresh_from_db()
    s.refresh_from_db()
    assert v.status == Visit.Status.CANCELLED and v.end_reason == "refunded" and s.booked == 0


def test_the_booked_order_is_the_only_one_commerce_takes_for_a_visit(gateway: Any) -> None:  # noqa: F811
    import secrets

    from apps.commerce import services as commerce
    from apps.commerce.errors import CommerceCode

    doc = doctor()
    b = booker()
    v = book(b, doc, slot(doc))
    with pytest.raises(ApiError) as exc:
        commerce.order_checkout(
            payer=b.account.user,
            patient_id=b.patient.pk,
            lines=[commerce.CheckoutLine(kind="consultation", ref=v.public_id, quantity=1)],
            client_key=secrets.token_hex(8),
            channel="sandbox",
        )
    assert exc.value.code == CommerceCode.ITEM_REFUSED
    assert Order.objects.count() == 1


def test_guardian_phone_must_be_a_phone_and_visit_lists_by_scope(
    gateway: Any,  # noqa: F811
    django_capture_on_commit_callbacks: Any,
) -> None:
    doc = doctor()
    b = booker()
    with pytest.raises(ApiError):
        book(b, doc, slot(doc), guardian_name="张伟", guardian_relation="父亲", guardian_phone="12345")
    assert not Visit.objects.exists()
    v = pay(gateway, book(b, doc, slot(doc)), django_capture_on_commit_callbacks)
    api = b.account.api()
    assert [x["id"] for x in api.get("/consultations/visits", scope="open").json()] == [v.public_id]
    assert api.get("/consultations/visits", scope="history").json() == []
    assert api.get("/consultations/visits", scope="bogus").status_code == 422
