from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from .services import recordings_purge_expired


@db_periodic_task(crontab(hour="3", minute="17"))
def purge_expired_recordings() -> int:
    return recordings_purge_expired()
