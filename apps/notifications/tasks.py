"""Background delivery of the outbox; every task is safe to re-run."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from .services import notification_deliver, notifications_sweep


@db_task()
def send_notification(notification_id: int) -> str:
    """One attempt at one outbox row (retries are the row's, not huey's)."""
    return notification_deliver(notification_id=notification_id)


@db_periodic_task(crontab(minute="*"))
def sweep_notifications() -> dict[str, int]:
    """Every minute: rows that are due but were never queued, or whose worker
    died, are delivered; the outbox, not the queue, is the record."""
    return notifications_sweep()


def enqueue(notification_id: int, eta: dt.datetime | None) -> None:
    """Queue one committed row (at ``eta`` when it lies ahead); registered with
    ``services.enqueuer_register`` at app ready."""
    if eta is not None and eta > timezone.now():
        send_notification.schedule((notification_id,), eta=eta)
    else:
        send_notification(notification_id)
