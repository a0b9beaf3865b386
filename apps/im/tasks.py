"""Background work of the IM domain; every task is safe to re-run."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from huey.contrib.djhuey import db_task

from .models import Conversation, Member
from .notifications import offline_notice
from .presence import online_users

# One notice per member per conversation within this window, however many messages.
NOTICE_INTERVAL = dt.timedelta(minutes=5)


@db_task(retries=3, retry_delay=10)
def notify_offline_members(conversation_id: int) -> list[int]:
    """Tell members who are offline and have unread messages; returns who was told."""
    conv = Conversation.objects.filter(pk=conversation_id).first()
    if conv is None:
        return []
    now = timezone.now()
    pending = list(
        Member.objects.select_related("user")
        .filter(conversation=conv, left_at__isnull=True, read_seq__lt=conv.last_seq)
        .exclude(last_notified_at__gt=now - NOTICE_INTERVAL)
    )
    if not pending:
        return []
    online = online_users([m.user_id for m in pending])
    told: list[int] = []
    for member in pending:
        if member.user_id in online:
            continue
        # Claim first, so a re-run or a parallel worker does not send twice.
        claimed = (
            Member.objects.filter(pk=member.pk)
            .exclude(last_notified_at__gt=now - NOTICE_INTERVAL)
            .update(last_notified_at=now)
        )
        if not claimed:
            continue
        unread = conv.last_seq - member.read_seq
        # The outbox sends it (and retries it); the key is this claim's, so a
        # re-run of this task after the claim cannot enqueue it twice.
        if offline_notice(
            user=member.user,
            title="您有新消息",
            text=f"{conv.title or '会话'}有{unread}条未读消息",
            dedupe_key=f"im.unread:{member.pk}:{now.isoformat()}",
        ):
            told.append(member.user_id)
    return told
