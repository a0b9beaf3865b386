"""Periodic work of the scales module; safe to re-run."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from .services import alerts_escalate_due


@db_periodic_task(crontab(minute="*"))
def escalate_overdue_alerts() -> dict[str, int]:
    """Every minute: alerts past their acknowledgement deadline go to the
    department's on-duty doctor. A sweep (not a per-alert timer) so a worker
    killed mid-task loses nothing: the next sweep finds the same rows."""
    return alerts_escalate_due()
