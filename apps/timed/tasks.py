"""The worker's side of the hard stop: a task at each deadline and a per-minute sweep.

Both end through ``services.session_end`` (idempotent under the row lock), so
they race the web clock harmlessly; with no web process running, or after a
restart of both, the session still ends at its deadline (the task) or within a
minute of it (the sweep). In the embedded default the worker cannot reach the
media node inside the web process: the web clock closes the room of a session
the worker ended (``media_closed_at`` still empty)."""

from __future__ import annotations

import datetime as dt

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from . import services


def schedule_deadline(session_id: int, deadline: dt.datetime) -> None:
    """Registered with services (apps.py): queue the end at ``deadline``."""
    session_deadline_task.schedule((session_id,), eta=deadline)


@db_task()
def session_deadline_task(session_id: int) -> str:
    """At the deadline: end the session if still running (an extension queues its own task)."""
    return services.session_end_if_due(session_id)


@db_periodic_task(crontab(minute="*"))
def end_overdue_sessions() -> int:
    """Every minute: running sessions past their deadline are ended (a lost task, a dead
    worker or web process delays the stop by a minute at most, never loses it)."""
    return services.sessions_end_overdue()
