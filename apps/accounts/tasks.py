"""Housekeeping for credentials; safe to re-run."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from .models import AuthToken, RealtimeTicket, SmsCode


@db_periodic_task(crontab(minute="*/10"))
def purge_expired_credentials() -> dict[str, int]:
    """Delete long-dead tokens, tickets and SMS codes (never needed again; the
    audit log keeps the logins)."""
    cutoff = timezone.now() - dt.timedelta(days=1)
    tickets, _ = RealtimeTicket.objects.filter(expires_at__lt=cutoff).delete()
    codes, _ = SmsCode.objects.filter(expires_at__lt=cutoff).delete()
    tokens, _ = AuthToken.objects.filter(expires_at__lt=cutoff - dt.timedelta(days=30)).delete()
    return {"tickets": tickets, "codes": codes, "tokens": tokens}
