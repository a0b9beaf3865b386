"""Background delivery of the outbox; every task is safe to re-run."""

from __future__ import annotations

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
