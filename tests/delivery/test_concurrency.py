"""Concurrent duplicates on PostgreSQL: five copies of one signed callback at once
store one event and make one transition; concurrent wrong pickup codes cannot
outrun the lockout."""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, connections
from django.test import Client
from django.utils import timezone

from apps.core.models import TransitionEvent
from apps.delivery.couriers.sandbox import SandboxCourier
from apps.delivery.models import Shipment, ShipmentEvent

from .conftest import KIND, SourceBook, World

pytestmark = pytest.mark.django_db(transaction=True)


def _at_once(n: int, fn: Callable[[], Any]) -> list[Any]:
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = fn()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def test_five_concurrent_duplicate_callbacks_make_one_event_and_one_transition(
    world: World, test_sources: SourceBook, sandbox: SandboxCourier
) -> None:
    test_sources.add("rx-c", world.me)
    api = world.pharmacist.api()
    sid = api.post("/delivery/shipments", {"source_kind": KIND, "source_id": "rx-c", "method": "courier"}).json()["id"]
    assert api.post(f"/delivery/shipments/{sid}/book", {"courier": "sandbox"}).status_code == 200
    shipment = Shipment.objects.get(pk=sid)
    route = sandbox.route(
        number=shipment.number,
        waybill_no=shipment.waybill_no,
        code="80",
        description="已签收",
        location="",
        occurred_at=timezone.now(),
        event_id="dup-1",
    )
    body = urllib.parse.urlencode(sandbox.push_form([route]))

    def post() -> int:
        r = Client().post("/api/v1/delivery/callbacks/sandbox", body, content_type="application/x-www-form-urlencoded")
        return int(r.status_code)

    assert _at_once(5, post) == [200] * 5
    connection.close()
    assert ShipmentEvent.objects.filter(shipment_id=sid).count() == 1
    moved = TransitionEvent.objects.filter(object_type="delivery.shipment", object_id=str(sid), action="deliver")
    assert moved.count() == 1
    assert Shipment.objects.get(pk=sid).status == "delivered"
    assert len(test_sources.delivered) == 1


def test_concurrent_wrong_codes_cannot_outrun_the_lockout(world: World, test_sources: SourceBook) -> None:
    test_sources.add("rx-l", world.me)
    api = world.pharmacist.api()
    sid = api.post("/delivery/shipments", {"source_kind": KIND, "source_id": "rx-l", "method": "pickup"}).json()["id"]
    api.post(f"/delivery/shipments/{sid}/ready")
    code = world.account.api().post(f"/delivery/my/shipments/{sid}/pickup-code").json()["code"]
    wrong = f"{(int(code) + 7) % 10**6:06d}"
    token = api.token

    def guess() -> int:
        from tests.conftest import Api

        return int(Api(token).post(f"/delivery/shipments/{sid}/pickup/verify", {"code": wrong}).status_code)

    statuses = _at_once(8, guess)
    connection.close()
    # Attempts are numbered under the row lock: 1-4 are evaluated (wrong), the 5th locks, the rest are refused.
    assert sorted(statuses) == [422] * 4 + [429] * 4
    shipment = Shipment.objects.get(pk=sid)
    assert shipment.pickup_locked_until is not None and shipment.status == "ready_for_pickup"


def test_the_default_sandbox_posts_to_this_process_without_a_base_url(
    world: World, test_sources: SourceBook, settings: Any
) -> None:
    """The embedded demo's sandbox (no DELIVERY_CALLBACK_BASE_URL): its pushes go
    through a WSGI call into this process, the same HTTP stack as from outside."""
    from apps.delivery import couriers

    settings.DELIVERY_SANDBOX_STEP_SECONDS = 0
    adapter = SandboxCourier(checkword="in-process")
    couriers.register_courier("sandbox", lambda: adapter)
    try:
        test_sources.add("rx-w", world.me)
        api = world.pharmacist.api()
        sid = api.post("/delivery/shipments", {"source_kind": KIND, "source_id": "rx-w", "method": "courier"}).json()[
            "id"
        ]
        assert api.post(f"/delivery/shipments/{sid}/book", {"courier": "sandbox"}).status_code == 200
        r = api.post(f"/delivery/sandbox/shipments/{sid}/step", {"action": "next"})
        assert r.status_code == 200 and r.json()["callback_status"] == 200
        assert Shipment.objects.get(pk=sid).status == "accepted"
    finally:
        couriers.unregister_courier("sandbox")
