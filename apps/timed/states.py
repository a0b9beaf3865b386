"""Timed-session lifecycle: (current status, action) -> next status, applied by
``apps.core.lifecycle.transition``. An ended session never runs again."""

from __future__ import annotations

from .models import TimedSession

S = TimedSession.Status
TIMED_TRANSITIONS: dict[tuple[str, str], str] = {
    (S.RUNNING, "extend"): S.RUNNING,  # the deadline moves once (services check extended_at)
    (S.RUNNING, "end"): S.ENDED,  # the deadline passed, the clinician ended it, or it was terminated
}
