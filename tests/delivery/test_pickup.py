"""Pickup at the hospital pharmacy: the code is shown once, the pharmacist checks it,
wrong codes count towards a lockout that holds even against the right code."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.core.models import TransitionEvent
from apps.delivery.models import Shipment

from .conftest import KIND, SourceBook, World

pytestmark = pytest.mark.django_db


def _ready(world: World, test_sources: SourceBook, source_id: str = "rx-p") -> int:
    test_sources.add(source_id, world.me)
    api = world.pharmacist.api()
    r = api.post("/delivery/shipments", {"source_kind": KIND, "source_id": source_id, "method": "pickup"})
    assert r.status_code == 201, r.json()
    sid = r.json()["id"]
    assert r.json()["allowed_actions"] == ["ready", "cancel"]
    r = api.post(f"/delivery/shipments/{sid}/ready")
    assert r.status_code == 200 and r.json()["status"] == "ready_for_pickup"
    return sid


def _verify(world: World, sid: int, code: str) -> Any:
    return world.pharmacist.api().post(f"/delivery/shipments/{sid}/pickup/verify", {"code": code})


def test_the_right_code_hands_the_parcel_over(world: World, test_sources: SourceBook) -> None:
    sid = _ready(world, test_sources)
    mine = world.account.api().get(f"/delivery/my/shipments/{sid}").json()
    assert mine["can_get_pickup_code"] is True and mine["status_label"] == "待取件"
    r = world.account.api().post(f"/delivery/my/shipments/{sid}/pickup-code")
    assert r.status_code == 200
    code = r.json()["code"]
    assert len(code) == 6 and code.isdigit()
    shipment = Shipment.objects.get(pk=sid)
    assert code not in shipment.pickup_code_hash and len(shipment.pickup_code_hash) == 64  # only a keyed hash
    r = _verify(world, sid, code)
    assert r.status_code == 200 and r.json()["status"] == "picked_up_by_patient"
    assert [(r.shipment_id, r.status) for r in test_sources.delivered] == [(sid, "picked_up_by_patient")]
    # The patient was told it is ready (outbox), with nothing of what the parcel holds.
    import json

    from apps.notifications.models import Notification
    from hub import crypto

    notices = Notification.objects.filter(user=world.account.user, template="notice")
    params = [json.loads(crypto.decrypt(n.params_enc, context="notification.params")) for n in notices]
    assert params and all(p["title"] == "药品已备好待取" for p in params)
    assert not any(drug in json.dumps(p, ensure_ascii=False) for p in params for drug in ("舍曲林", "抑郁"))
    assert not Notification.objects.filter(user=world.other.user).exists()
    # A used code cannot be used again, and a finished shipment issues no new code.
    assert _verify(world, sid, code).status_code == 409
    assert world.account.api().post(f"/delivery/my/shipments/{sid}/pickup-code").status_code == 409


def test_a_code_is_shown_once_asking_again_replaces_it(world: World, test_sources: SourceBook) -> None:
    sid = _ready(world, test_sources)
    api = world.account.api()
    first = api.post(f"/delivery/my/shipments/{sid}/pickup-code").json()["code"]
    second = api.post(f"/delivery/my/shipments/{sid}/pickup-code").json()["code"]
    shown = str(api.get(f"/delivery/my/shipments/{sid}").json())
    assert first not in shown and second not in shown  # never in the shipment itself
    if first != second:  # (one in a million they are equal)
        r = _verify(world, sid, first)
        assert r.status_code == 422 and r.json()["code"] == "delivery.pickup_code_wrong"
    assert _verify(world, sid, second).status_code == 200


def test_wrong_codes_lock_the_shipment_even_against_the_right_code(world: World, test_sources: SourceBook) -> None:
    sid = _ready(world, test_sources)
    code = world.account.api().post(f"/delivery/my/shipments/{sid}/pickup-code").json()["code"]
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    remaining = []
    for _ in range(4):
        r = _verify(world, sid, wrong)
        assert r.status_code == 422
        remaining.append(r.json()["detail"]["remaining_attempts"])
    assert remaining == [4, 3, 2, 1]
    r = _verify(world, sid, wrong)  # the fifth wrong code locks
    assert r.status_code == 429 and r.json()["code"] == "delivery.pickup_locked"
    r = _verify(world, sid, code)  # locked: the right code is not even evaluated
    assert r.status_code == 429
    shipment = Shipment.objects.get(pk=sid)
    assert shipment.status == "ready_for_pickup" and shipment.pickup_locked_until is not None
    assert AuditEvent.objects.filter(action="delivery.pickup_code_failed", object_id=str(sid)).count() == 5
    assert AuditEvent.objects.filter(action="delivery.pickup_locked", object_id=str(sid)).count() == 1
    assert not TransitionEvent.objects.filter(object_id=str(sid), action="collect").exists()
    # After the lock the window starts again.
    Shipment.objects.filter(pk=sid).update(pickup_locked_until=timezone.now() - dt.timedelta(seconds=1))
    assert _verify(world, sid, code).status_code == 200


def test_only_the_pharmacist_checks_codes_and_only_the_owner_gets_them(world: World, test_sources: SourceBook) -> None:
    from apps.accounts.roles import Role
    from tests.conftest import make_staff

    sid = _ready(world, test_sources)
    assert world.other.api().post(f"/delivery/my/shipments/{sid}/pickup-code").status_code == 404
    sysadmin = make_staff(Role.SYSADMIN, "sys9")
    assert sysadmin.api().post(f"/delivery/shipments/{sid}/pickup/verify", {"code": "123456"}).status_code == 403
    assert world.account.api().post(f"/delivery/shipments/{sid}/pickup/verify", {"code": "1"}).status_code == 403
    assert Shipment.objects.get(pk=sid).pickup_failures == 0  # refused before counting
    assert Shipment.objects.get(pk=sid).pickup_code_hash == ""


def test_a_courier_shipment_cannot_be_made_ready_and_a_pickup_not_booked(
    world: World, test_sources: SourceBook
) -> None:
    test_sources.add("c1", world.me)
    api = world.pharmacist.api()
    courier_id = api.post("/delivery/shipments", {"source_kind": KIND, "source_id": "c1", "method": "courier"}).json()[
        "id"
    ]
    r = api.post(f"/delivery/shipments/{courier_id}/ready")
    assert r.status_code == 409 and r.json()["code"] == "delivery.method_not_allowed"
    sid = _ready(world, test_sources, "p2")
    r = api.post(f"/delivery/shipments/{sid}/book", {"courier": "sf"})
    assert r.status_code == 409 and r.json()["code"] == "delivery.method_not_allowed"
    assert Shipment.objects.get(pk=courier_id).status == "created"
