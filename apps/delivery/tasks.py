"""huey tasks of the delivery domain: the sandbox courier's timed steps, and a
sweep that asks couriers for the route of shipments gone quiet (a lost push
delays an update, it never loses it)."""

from __future__ import annotations

import logging

from django.conf import settings
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

log = logging.getLogger(__name__)


@db_task()
def sandbox_courier_step(shipment_id: int) -> None:
    """Post the sandbox courier's next event, then schedule the one after it.

    Safe to re-run: the shipment's status decides the next step, and a step that
    was already applied is ignored by the callback (same status, no move)."""
    from .models import Shipment
    from .sandbox_control import sandbox_step
    from .states import TERMINAL

    shipment = Shipment.objects.filter(pk=shipment_id, courier="sandbox").first()
    if shipment is None or shipment.status in TERMINAL or shipment.status == Shipment.Status.FAILED:
        return
    status = sandbox_step(shipment_id=shipment_id, action="next")
    if status != 200:
        log.warning("sandbox courier step for shipment %s answered %s", shipment_id, status)
        return
    shipment.refresh_from_db(fields=["status"])
    if shipment.status not in TERMINAL and settings.DELIVERY_SANDBOX_STEP_SECONDS > 0:
        sandbox_courier_step.schedule((shipment_id,), delay=settings.DELIVERY_SANDBOX_STEP_SECONDS)


@db_periodic_task(crontab(minute="*/30"))
def track_quiet_shipments() -> None:
    from .services import tracks_due

    tracks_due()
