"""No overbooking under concurrency (issue 13, Done when): 50 bookers, each on its own
thread and PostgreSQL connection, released together at one slot of 10 places get
exactly 10 visits; the 40 others get ``consult.slot_full`` and no order."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection

from apps.commerce.models import Order
from apps.consultations.errors import ConsultCode
from apps.consultations.models import Slot, Visit
from hub.errors import ApiError
from tests.commerce.conftest import gateway  # noqa: F401  (fixture)

from .test_booking_support import Booker, book, booker, doctor, slot

pytestmark = pytest.mark.django_db(transaction=True)

BOOKERS = 50
PLACES = 10


def test_fifty_concurrent_bookers_for_ten_places_get_exactly_ten(gateway: Any) -> None:  # noqa: F811
    doc = doctor()
    s = slot(doc, capacity=PLACES)
    bookers: list[Booker] = [booker() for _ in range(BOOKERS)]
    barrier = threading.Barrier(BOOKERS)
    results: list[Any] = []
    lock = threading.Lock()

    def run(b: Booker) -> None:
        try:
            barrier.wait(30)
            out: Any = book(b, doc, s)
        except Exception as exc:  # collected and asserted below
            out = exc
        finally:
            connection.close()
        with lock:
            results.append((b, out))

    threads = [threading.Thread(target=run, args=(b,)) for b in bookers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == BOOKERS
    won = [(b, r) for b, r in results if isinstance(r, Visit)]
    lost = [(b, r) for b, r in results if not isinstance(r, Visit)]
    assert len(won) == PLACES
    assert all(isinstance(r, ApiError) and r.code == ConsultCode.SLOT_FULL for _, r in lost), [r for _, r in lost]
    s.refresh_from_db()
    assert s.booked == PLACES == Visit.objects.filter(slot=s).count()
    # Each winner has its order; no loser has a visit or an order.
    assert Order.objects.count() == PLACES
    assert {o.patient_id for o in Order.objects.all()} == {b.patient.pk for b, _ in won}
    assert not Visit.objects.filter(patient__in=[b.patient for b, _ in lost]).exists()
    assert not Order.objects.filter(patient__in=[b.patient for b, _ in lost]).exists()
    assert Slot.objects.filter(booked__gt=PLACES).count() == 0
