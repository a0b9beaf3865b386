"""What clients see of a timed session (``docs/consultations-api.md`` "Timed session")."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from django.utils import timezone

from .models import TimedSession


def remaining_seconds(session: TimedSession, now: dt.datetime | None = None) -> int:
    if session.status != TimedSession.Status.RUNNING:
        return 0
    left = (session.deadline - (now or timezone.now())).total_seconds()
    return max(0, math.ceil(left))


def session_out(session: TimedSession, now: dt.datetime | None = None) -> dict[str, Any]:
    """``{id, status, status_label, started_at, deadline, remaining_seconds, server_now,
    extended, can_extend, extension_seconds, warnings_sent}``; clients count down from
    ``deadline`` corrected by ``server_now`` and follow ``timed.*`` events."""
    at = now or timezone.now()
    running = session.status == TimedSession.Status.RUNNING
    extended = session.extended_at is not None
    return {
        "id": session.pk,
        "status": session.status,
        "status_label": session.get_status_display(),
        "started_at": session.started_at,
        "deadline": session.deadline,
        "remaining_seconds": remaining_seconds(session, at),
        "server_now": at,
        "extended": extended,
        "can_extend": running and session.extension_seconds > 0 and not extended and session.deadline > at,
        "extension_seconds": session.extension_seconds,
        "warnings_sent": [s for s, at_ in ((300, session.warned_5_at), (60, session.warned_1_at)) if at_ is not None],
    }
