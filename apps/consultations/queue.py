"""The waiting room: queue positions and the live pushes.

A queue is the waiting visits of one doctor, or of one department without a
doctor ("next available doctor"), ordered by slot start (department visits have
none) then ``queued_at``. The estimated wait is the number ahead times
``CONSULT_MINUTES_PER_VISIT`` of the visit's kind.

Every change to a queue (paid, cancelled, rescheduled, taken, accepted,
terminated) calls :func:`queue_changed` inside its transaction; after commit each
changed queue is recomputed once (one query, not one per socket) and every
waiting visit of it gets ``visit.queue`` on ``visit:<public_id>``; the doctor
(``consult_queue:<profile id>``) and the department (``consult_dept:<code>``)
get ``consult.queue_changed`` with counts."""

from __future__ import annotations

import logging
import threading
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, QuerySet

from hub.realtime.node import node
from hub.realtime.sessions import event_frame

from .models import Department, Visit


def publish(topic: str, event: str, data: dict[str, Any]) -> None:
    """Push now (callers run after commit)."""
    node().publish_from_thread(topic, event_frame(topic, event, data))


QUEUE_EVENT = "visit.queue"
COUNTS_EVENT = "consult.queue_changed"


def visit_topic(public_id: str) -> str:
    return f"visit:{public_id}"


def doctor_topic(doctor_id: int) -> str:
    return f"consult_queue:{doctor_id}"


def department_topic(code: str) -> str:
    return f"consult_dept:{code}"


def queue_of(*, doctor_id: int | None = None, department_id: int | None = None) -> QuerySet[Visit]:
    qs = Visit.objects.filter(status=Visit.Status.WAITING).select_related(
        "patient", "doctor__user__staff_profile", "doctor__department", "department", "slot", "prior_record"
    )
    qs = qs.filter(doctor_id=doctor_id) if doctor_id is not None else qs.filter(doctor__isnull=True)
    if department_id is not None and doctor_id is None:
        qs = qs.filter(department_id=department_id)
    return qs.order_by(F("slot__starts_at").asc(nulls_last=True), F("queued_at").asc(nulls_last=True), "id")


def _minutes(kind: str) -> int:
    return int(settings.CONSULT_MINUTES_PER_VISIT.get(kind, 10))


def _info(ahead: int, kind: str) -> dict[str, int]:
    return {"position": ahead + 1, "ahead": ahead, "estimated_wait_minutes": ahead * _minutes(kind)}


def queue_info(visit: Visit) -> dict[str, int] | None:
    if visit.status != Visit.Status.WAITING:
        return None
    if visit.doctor_id is not None:
        ids = list(queue_of(doctor_id=visit.doctor_id).values_list("pk", flat=True))
    else:
        ids = list(queue_of(department_id=visit.department_id).values_list("pk", flat=True))
    ahead = ids.index(visit.pk) if visit.pk in ids else len(ids)
    return _info(ahead, visit.kind)


# --- after-commit pushes, one per changed queue --------------------------------------------------

log = logging.getLogger(__name__)
_pending = threading.local()


def queue_changed(*, doctor_id: int | None, department_id: int) -> None:
    """Note (inside the caller's transaction) that this queue changed; pushed once after
    commit. Every call registers the flush (a rolled-back savepoint drops its own
    callbacks); the first flush after commit takes all the keys, the others find none."""
    keys: set[tuple[int | None, int]] | None = getattr(_pending, "keys", None)
    if keys is None:
        keys = set()
        _pending.keys = keys
    keys.add((doctor_id, department_id))
    transaction.on_commit(_flush)


def _flush() -> None:
    keys: set[tuple[int | None, int]] = getattr(_pending, "keys", None) or set()
    _pending.keys = None
    for doctor_id, department_id in sorted(keys, key=lambda k: (k[0] or 0, k[1])):
        try:
            push_queue(doctor_id=doctor_id, department_id=department_id)
        except Exception:  # a push is best effort: clients also refresh on visit.updated
            log.warning("queue push failed for doctor=%s department=%s", doctor_id, department_id, exc_info=True)


def push_queue(*, doctor_id: int | None, department_id: int) -> int:
    """Recompute one queue and push every waiting visit's position; answers how many were told."""
    rows = list(
        (queue_of(doctor_id=doctor_id) if doctor_id else queue_of(department_id=department_id)).values_list(
            "public_id", "kind"
        )
    )
    for ahead, (public_id, kind) in enumerate(rows):
        publish(visit_topic(public_id), QUEUE_EVENT, {"visit_id": public_id, **_info(ahead, kind)})
    counts = counts_of(doctor_id=doctor_id, department_id=department_id)
    if doctor_id:
        publish(doctor_topic(doctor_id), COUNTS_EVENT, counts)
    else:
        code = Department.objects.filter(pk=department_id).values_list("code", flat=True).first()
        if code:
            publish(department_topic(code), COUNTS_EVENT, counts)
    return len(rows)


def counts_of(*, doctor_id: int | None, department_id: int) -> dict[str, Any]:
    qs = Visit.objects.filter(
        status__in=[Visit.Status.WAITING, Visit.Status.ACCEPTED, Visit.Status.IN_PROGRESS],
    )
    qs = qs.filter(doctor_id=doctor_id) if doctor_id else qs.filter(doctor__isnull=True, department_id=department_id)
    by = dict(qs.values_list("status").annotate(n=Count("id")).order_by())
    return {
        "waiting": int(by.get(Visit.Status.WAITING, 0)),
        "accepted": int(by.get(Visit.Status.ACCEPTED, 0)),
        "in_progress": int(by.get(Visit.Status.IN_PROGRESS, 0)),
    }
