"""Periodic work of the pharmacy module; safe to re-run."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from .services import prescriptions_expire_due


@db_periodic_task(crontab(minute="*/5"))
def expire_prescriptions() -> int:
    """Every 5 minutes: unpaid prescriptions past their validity become expired.
    A sweep, so a dead worker delays the change but never loses it; the gating
    functions check ``expires_at`` themselves, so nothing can be paid in between."""
    return prescriptions_expire_due()
