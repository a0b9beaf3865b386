"""The overlap check holds under concurrency: eight requests of one doctor, each on its
own thread and PostgreSQL connection, released together with overlapping periods of
the same kind, create exactly one slot; the others get ``consult.slot_overlap``."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from apps.consultations import schedule
from apps.consultations.errors import ConsultCode
from apps.consultations.models import Slot
from hub.errors import ApiError

from .test_booking_support import doctor

pytestmark = pytest.mark.django_db(transaction=True)

REQUESTS = 8


def test_concurrent_overlapping_slots_create_exactly_one() -> None:
    doc = doctor()
    base = timezone.now().replace(microsecond=0) + dt.timedelta(days=1)
    barrier = threading.Barrier(REQUESTS)
    results: list[Any] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        start = base + dt.timedelta(minutes=5 * i)  # each meets every other (1 h long, 5 min apart)
        data = schedule.SlotInput(kind="text", starts_at=start, ends_at=start + dt.timedelta(hours=1), capacity=5)
        try:
            barrier.wait(30)
            out: Any = schedule.slot_create(doctor=doc.user, data=data)
        except Exception as exc:  # collected and asserted below
            out = exc
        finally:
            connection.close()
        with lock:
            results.append(out)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(REQUESTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == REQUESTS
    won = [r for r in results if isinstance(r, Slot)]
    lost = [r for r in results if not isinstance(r, Slot)]
    assert len(won) == 1
    assert all(isinstance(r, ApiError) and r.code == ConsultCode.SLOT_OVERLAP for r in lost), lost
    assert Slot.objects.filter(doctor=doc.profile).count() == 1
