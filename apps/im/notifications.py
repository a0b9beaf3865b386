"""Reaching IM members who are not connected.

The notice goes through the notification outbox (``apps.notifications``):
in-app, plus the first channel the member can be reached on (WeChat
subscribe message with an unused grant, Alipay template message, SMS) and
has not turned off; quiet hours defer it. The sandbox adapters there enforce
what the real services enforce."""

from __future__ import annotations

from apps.accounts.models import User
from apps.notifications.services import notify_user


def offline_notice(*, user: User, title: str, text: str, dedupe_key: str) -> list[str]:
    """Enqueue one notice (in the caller's transaction); returns the channels chosen."""
    rows = notify_user(user=user, template="notice", params={"title": title, "text": text}, dedupe_key=dedupe_key)
    return [row.channel for row in rows]
