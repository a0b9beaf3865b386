"""Periodic work of consultations; safe to re-run."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from .services import visits_expire_uncalled, visits_expire_unpaid


@db_periodic_task(crontab(minute="*"))
def expire_unpaid_visits() -> int:
    """Every minute: visits unpaid CONSULT_PAYMENT_MINUTES after booking are cancelled
    and their slot places released (a sweep: a dead worker delays, never loses it)."""
    return visits_expire_unpaid()


@db_periodic_task(crontab(minute="*"))
def expire_uncalled_visits() -> int:
    """Every minute: accepted visits not called in CONSULT_CALL_GRACE_MINUTES after their
    slot ended (department visits: after acceptance) are cancelled and refunded in full."""
    return visits_expire_uncalled()
