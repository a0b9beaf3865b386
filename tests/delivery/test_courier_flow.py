"""A courier shipment from creation to delivery through the sandbox courier's signed
callbacks (our real callback endpoint), and what late, repeated or forged
callbacks do: nothing."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.core.models import TransitionEvent
from apps.delivery.couriers.sandbox import SandboxCourier
from apps.delivery.models import Shipment, ShipmentEvent

from .conftest import KIND, SANDBOX_CHECKWORD, SourceBook, World

pytestmark = pytest.mark.django_db


def _create_and_book(world: World, test_sources: SourceBook, source_id: str = "rx-1") -> dict[str, Any]:
    test_sources.add(source_id, world.me)
    api = world.pharmacist.api()
    r = api.post("/delivery/shipments", {"source_kind": KIND, "source_id": source_id, "method": "courier"})
    assert r.status_code == 201, r.json()
    created = r.json()
    assert created["status"] == "created" and created["allowed_actions"] == ["book", "cancel"]
    r = api.post(f"/delivery/shipments/{created['id']}/book", {"courier": "sandbox"})
    assert r.status_code == 200, r.json()
    return r.json()


def _step(world: World, shipment_id: int, action: str = "next") -> dict[str, Any]:
    r = world.pharmacist.api().post(f"/delivery/sandbox/shipments/{shipment_id}/step", {"action": action})
    assert r.status_code == 200, r.json()
    return r.json()


def _transitions(shipment_id: int) -> list[tuple[str, str]]:
    rows = TransitionEvent.objects.filter(object_type="delivery.shipment", object_id=str(shipment_id)).order_by("pk")
    return [(t.action, t.to_status) for t in rows]


def test_the_sandbox_courier_delivers_through_signed_callbacks(
    world: World, test_sources: SourceBook, sandbox: SandboxCourier
) -> None:
    booked = _create_and_book(world, test_sources)
    assert booked["status"] == "booked" and booked["waybill_no"].startswith("SBX")
    sid = booked["id"]
    seen = []
    for _ in range(4):
        out = _step(world, sid)
        assert out["callback_status"] == 200
        seen.append(out["shipment"]["status"])
    assert seen == ["accepted", "picked_up", "in_transit", "delivered"]
    assert _transitions(sid) == [
        ("book", "booked"),
        ("accept", "accepted"),
        ("pick_up", "picked_up"),
        ("transit", "in_transit"),
        ("deliver", "delivered"),
    ]
    shipment = Shipment.objects.get(pk=sid)
    assert shipment.finished_at is not None
    assert shipment.events.count() == 4
    # The owning app heard of the delivery once, by ids only.
    assert [(r.shipment_id, r.status, r.source_id) for r in test_sources.delivered] == [(sid, "delivered", "rx-1")]
    # Every transition is audited with ids and codes only.
    audited = list(
        AuditEvent.objects.filter(object_type="delivery_shipment", object_id=str(sid)).values_list("action", flat=True)
    )
    assert audited == [
        "delivery.create",
        "delivery.book",
        "delivery.accept",
        "delivery.pick_up",
        "delivery.transit",
        "delivery.deliver",
    ]
    assert not any("张" in json.dumps(d) for d in AuditEvent.objects.values_list("detail", flat=True))
    # A sandbox step past the end is refused: nothing is posted.
    r = world.pharmacist.api().post(f"/delivery/sandbox/shipments/{sid}/step", {"action": "next"})
    assert r.status_code == 409 and r.json()["code"] == "delivery.transition_refused"
    assert ShipmentEvent.objects.filter(shipment_id=sid).count() == 4


def test_a_repeated_event_is_stored_once_and_moves_nothing(
    world: World, test_sources: SourceBook, sandbox: SandboxCourier
) -> None:
    sid = _create_and_book(world, test_sources)["id"]
    _step(world, sid)
    before = _transitions(sid)
    out = _step(world, sid, "repeat")
    assert out["callback_status"] == 200  # the courier is told "got it" again
    assert out["shipment"]["status"] == "accepted"
    assert ShipmentEvent.objects.filter(shipment_id=sid).count() == 1
    assert _transitions(sid) == before


def test_late_events_never_move_a_shipment_backwards(
    world: World, test_sources: SourceBook, sandbox: SandboxCourier
) -> None:
    sid = _create_and_book(world, test_sources)["id"]
    shipment = Shipment.objects.get(pk=sid)
    now = timezone.now()

    def route(code: str, minutes: int, event_id: str) -> dict[str, Any]:
        return sandbox.route(
            number=shipment.number,
            waybill_no=shipment.waybill_no,
            code=code,
            description="x",
            location="",
            occurred_at=now - dt.timedelta(minutes=minutes),
            event_id=event_id,
        )

    # Delivered arrives first (jumping forward walks the table), then the older in-transit push.
    assert sandbox.push([route("80", 1, "e-deliver")]).status_code == 200
    shipment.refresh_from_db()
    assert shipment.status == "delivered"
    assert [a for a, _ in _transitions(sid)] == ["book", "accept", "pick_up", "transit", "deliver"]
    assert sandbox.push([route("36", 30, "e-transit")]).status_code == 200
    shipment.refresh_from_db()
    assert shipment.status == "delivered"
    assert ShipmentEvent.objects.filter(shipment_id=sid).count() == 2  # the history has both
    assert len(_transitions(sid)) == 5
    assert len(test_sources.delivered) == 1


def test_several_events_in_one_push_apply_in_the_order_they_happened(
    world: World, test_sources: SourceBook, sandbox: SandboxCourier
) -> None:
    sid = _create_and_book(world, test_sources)["id"]
    shipment = Shipment.objects.get(pk=sid)
    now = timezone.now()
    routes = [
        sandbox.route(
            number=shipment.number,
            waybill_no=shipment.waybill_no,
            code=code,
            description=code,
            location="",
            occurred_at=now - dt.timedelta(minutes=m),
            event_id=f"e{code}",
        )
        for code, m in (("70", 1), ("50", 20), ("SBX10", 30))  # failed, picked up, accepted: newest first
    ]
    assert sandbox.push(routes).status_code == 200
    shipment.refresh_from_db()
    assert shipment.status == "failed"
    assert [a for a, _ in _transitions(sid)] == ["book", "accept", "pick_up", "fail"]
    assert [r.status for r in test_sources.failed] == ["failed"]
    # Then the courier returns it.
    _step(world, sid)
    shipment.refresh_from_db()
    assert shipment.status == "returned"


def _signed_push(sandbox: SandboxCourier, shipment: Shipment, **over: Any) -> dict[str, str]:
    routes = [
        sandbox.route(
            number=shipment.number,
            waybill_no=shipment.waybill_no,
            code="50",
            description="收件",
            location="",
            occurred_at=timezone.now(),
            event_id="evt-1",
        )
    ]
    return {**sandbox.push_form(routes), **over}


def _post(form: dict[str, str]) -> Any:
    from urllib.parse import urlencode

    return Client().post(
        "/api/v1/delivery/callbacks/sandbox", urlencode(form), content_type="application/x-www-form-urlencoded"
    )


def _nothing_recorded(sid: int) -> None:
    assert ShipmentEvent.objects.filter(shipment_id=sid).count() == 0
    assert [a for a, _ in _transitions(sid)] == ["book"]
    assert Shipment.objects.get(pk=sid).status == "booked"


def test_a_bad_signature_is_refused_with_nothing_recorded(
    world: World, test_sources: SourceBook, sandbox: SandboxCourier
) -> None:
    shipment = Shipment.objects.get(pk=_create_and_book(world, test_sources)["id"])
    form = _signed_push(sandbox, shipment)
    forged = SandboxCourier(checkword="not-" + SANDBOX_CHECKWORD, transport=sandbox.http._transport)
    for bad in (
        {**form, "msgDigest": "AAAA" + form["msgDigest"][4:]},
        {**form, "msgData": form["msgData"].replace('"50"', '"80"')},  # body changed after signing
        forged.push_form(json.loads(form["msgData"])["Body"]["WaybillRoute"]),  # someone else's checkword
    ):
        r = _post(bad)
        assert r.status_code == 401
        assert r.json()["code"] == "delivery.callback_rejected"
    _nothing_recorded(shipment.pk)


def test_a_stale_timestamp_is_refused(world: World, test_sources: SourceBook, sandbox: SandboxCourier) -> None:
    shipment = Shipment.objects.get(pk=_create_and_book(world, test_sources)["id"])
    routes = json.loads(_signed_push(sandbox, shipment)["msgData"])["Body"]["WaybillRoute"]
    old = str(int(timezone.now().timestamp()) - 3600)
    r = _post(sandbox.push_form(routes, timestamp=old))  # validly signed, an hour old (a replay)
    assert r.status_code == 401 and r.json()["detail"]["reason"] == "sf.stale_timestamp"
    _nothing_recorded(shipment.pk)


def test_an_unknown_waybill_is_refused_with_nothing_recorded(
    world: World, test_sources: SourceBook, sandbox: SandboxCourier
) -> None:
    shipment = Shipment.objects.get(pk=_create_and_book(world, test_sources)["id"])
    good = sandbox.route(
        number=shipment.number,
        waybill_no=shipment.waybill_no,
        code="SBX10",
        description="接单",
        location="",
        occurred_at=timezone.now(),
        event_id="ok-1",
    )
    unknown = {**good, "mailno": "SBX000000000000", "orderid": "", "id": "x-1"}
    r = _post(sandbox.push_form([good, unknown]))  # one unknown waybill refuses the whole push
    assert r.status_code == 404 and r.json()["code"] == "delivery.callback_unknown_waybill"
    wrong_number = {**good, "orderid": "DS0000", "id": "x-2"}  # our waybill with someone else's order number
    assert _post(sandbox.push_form([wrong_number])).status_code == 404
    _nothing_recorded(shipment.pk)


def test_an_unknown_courier_answers_404(world: World) -> None:
    r = Client().post("/api/v1/delivery/callbacks/nosuch", b"x", content_type="text/plain")
    assert r.status_code == 404 and r.json()["code"] == "not_found"


def test_the_callback_answers_in_sfs_format(world: World, test_sources: SourceBook, sandbox: SandboxCourier) -> None:
    shipment = Shipment.objects.get(pk=_create_and_book(world, test_sources)["id"])
    r = _post(_signed_push(sandbox, shipment))
    assert r.status_code == 200
    assert r.json() == {"return_code": "0000", "return_msg": "成功"}


def test_booking_the_sandbox_schedules_its_steps_and_each_step_schedules_the_next(
    world: World,
    test_sources: SourceBook,
    sandbox: SandboxCourier,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from huey.contrib.djhuey import HUEY

    from apps.delivery.tasks import sandbox_courier_step

    settings.DELIVERY_SANDBOX_STEP_SECONDS = 30
    HUEY.storage.flush_schedule()
    try:
        with django_capture_on_commit_callbacks(execute=True):
            sid = _create_and_book(world, test_sources)["id"]
        (task,) = HUEY.scheduled()
        assert task.name.endswith("sandbox_courier_step") and task.args == (sid,)
        assert Shipment.objects.get(pk=sid).status == "booked"  # nothing happens before the delay
        HUEY.storage.flush_schedule()
        sandbox_courier_step.call_local(sid)  # the worker runs it when it is due
        assert Shipment.objects.get(pk=sid).status == "accepted"
        (task,) = HUEY.scheduled()
        assert task.args == (sid,)
        for _ in range(3):
            sandbox_courier_step.call_local(sid)
        assert Shipment.objects.get(pk=sid).status == "delivered"
        HUEY.storage.flush_schedule()
        sandbox_courier_step.call_local(sid)  # re-run after the end: nothing posted, nothing scheduled
        assert ShipmentEvent.objects.filter(shipment_id=sid).count() == 4
        assert HUEY.scheduled() == []
    finally:
        HUEY.storage.flush_schedule()


def test_oversized_or_malformed_pushes_are_refused_not_crashed(
    world: World, test_sources: SourceBook, sandbox: SandboxCourier
) -> None:
    shipment = Shipment.objects.get(pk=_create_and_book(world, test_sources)["id"])
    good = sandbox.route(
        number=shipment.number,
        waybill_no=shipment.waybill_no,
        code="50",
        description="x",
        location="",
        occurred_at=timezone.now(),
        event_id="e",
    )
    for routes in (
        [{**good, "id": "x" * 200}],
        [{**good, "opCode": "9" * 40}],
        [{**good, "acceptTime": "昨天"}],
        ["not a route"],
        [],
    ):
        r = _post(sandbox.push_form(routes))  # type: ignore[arg-type]
        assert r.status_code == 401, routes
        assert r.json()["code"] == "delivery.callback_rejected"
    assert _post({"msgData": "{", "timestamp": "1", "msgDigest": "x"}).status_code == 401
    r = Client().post(
        "/api/v1/delivery/callbacks/sandbox", b"\xff\xfe", content_type="application/x-www-form-urlencoded"
    )
    assert r.status_code == 401
    _nothing_recorded(shipment.pk)
