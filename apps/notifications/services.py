"""Writes of the notification domain: enqueue, deliver (claim, send, retry),
sweep, preferences. Decisions in docs/adr/0033-notifications.md.

- ``notification_enqueue`` writes the outbox row in the caller's transaction
  and hands it to the worker on commit: nothing is sent for a rolled-back
  action, and nothing committed is lost (the sweep finds rows whose enqueue
  was lost or whose worker died).
- ``notification_deliver`` claims the row (``SELECT ... FOR UPDATE SKIP
  LOCKED``, status -> sending with a lease) before calling the adapter, so two
  tasks for one row send once; a dedupe key makes two enqueues one row.
- Urgent rows (login codes, critical psych alerts) bypass quiet hours and are
  delivered synchronously right after the commit, through the same row and
  adapter, so a busy or stopped worker never delays a login; if that attempt
  fails the row retries on the worker like any other."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import MiniProgramIdentity, User
from hub import crypto
from hub.outside import SandboxInProduction

from .adapters import RECIPIENT_CONTEXT, Outgoing, adapter_for
from .errors import SendError
from .models import Channel, Notification, Preference, QuietHours, SubscriptionGrant

log = logging.getLogger(__name__)
LOCAL_TZ = ZoneInfo("Asia/Shanghai")
# External channels for a notice, most preferred first; in-app is always added.
NOTICE_ORDER = (Channel.WECHAT_SUBSCRIBE, Channel.ALIPAY_TEMPLATE, Channel.SMS)


def _max_attempts() -> int:
    return int(getattr(settings, "NOTIFY_MAX_ATTEMPTS", 5))


def _lease() -> dt.timedelta:
    return dt.timedelta(seconds=int(getattr(settings, "NOTIFY_LEASE_SECONDS", 120)))


def retry_delay(attempts: int) -> dt.timedelta:
    """Exponential backoff after the ``attempts``-th failed attempt."""
    base = int(getattr(settings, "NOTIFY_RETRY_BASE_SECONDS", 30))
    return dt.timedelta(seconds=base * 2 ** max(attempts - 1, 0))


# --- preferences and quiet hours ------------------------------------------------------


def channel_enabled(user: User, channel: str) -> bool:
    pref = Preference.objects.filter(user=user, channel=channel).first()
    return pref is None or pref.enabled


def preference_set(*, user: User, channel: str, enabled: bool) -> Preference:
    pref, _ = Preference.objects.update_or_create(
        user=user, channel=channel, defaults={"enabled": enabled, "updated_at": timezone.now()}
    )
    return pref


def quiet_hours_set(*, user: User, start: dt.time | None, end: dt.time | None) -> QuietHours | None:
    if start is None or end is None or start == end:
        QuietHours.objects.filter(user=user).delete()
        return None
    quiet, _ = QuietHours.objects.update_or_create(user=user, defaults={"start": start, "end": end})
    return quiet


def quiet_until(user: User | None, now: dt.datetime) -> dt.datetime | None:
    """When the user's quiet hours (Asia/Shanghai) end, if ``now`` is inside them."""
    if user is None:
        return None
    quiet = QuietHours.objects.filter(user=user).first()
    if quiet is None:
        return None
    local = timezone.localtime(now, LOCAL_TZ)
    t = local.time()
    if quiet.start < quiet.end:
        inside = quiet.start <= t < quiet.end
    else:  # wraps midnight, e.g. 22:00-08:00
        inside = t >= quiet.start or t < quiet.end
    if not inside:
        return None
    end = local.replace(hour=quiet.end.hour, minute=quiet.end.minute, second=0, microsecond=0)
    if end <= local:
        end += dt.timedelta(days=1)
    return end.astimezone(dt.UTC)


# --- enqueue ----------------------------------------------------------------------------


def notification_enqueue(
    *,
    channel: str,
    template: str,
    params: dict[str, Any],
    user: User | None = None,
    recipient: str = "",
    dedupe_key: str = "",
    urgent: bool = False,
    now: dt.datetime | None = None,
) -> Notification:
    """Write one outbox row in the caller's transaction; deliver after commit.

    A second call with the same ``dedupe_key`` returns the first row and sends
    nothing more. Non-urgent rows wait out the user's quiet hours."""
    channel = Channel(channel)
    now = now or timezone.now()
    if dedupe_key:
        existing = Notification.objects.filter(dedupe_key=dedupe_key).first()
        if existing is not None:
            return existing
    deferred_to = None if urgent else quiet_until(user, now)
    row = Notification(
        user=user,
        channel=channel,
        template=template,
        recipient_enc=crypto.encrypt(recipient, context="notification.recipient") if recipient else "",
        recipient_hash=crypto.lookup_hash(recipient, context=RECIPIENT_CONTEXT[channel]) if recipient else "",
        params_enc=crypto.encrypt(json.dumps(params, ensure_ascii=False), context="notification.params"),
        urgent=urgent,
        dedupe_key=dedupe_key or None,
        next_attempt_at=deferred_to or now,
        deferred_by_quiet_hours=deferred_to is not None,
        created_at=now,
    )
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError:
        # A concurrent enqueue with the same key won the insert.
        return Notification.objects.get(dedupe_key=dedupe_key)
    pk = row.pk
    if urgent:
        transaction.on_commit(lambda: _deliver_now_or_queue(pk))
    else:
        transaction.on_commit(lambda: _queue(pk, deferred_to))
    return row


# How a committed row reaches the task queue: ``tasks.enqueue``, registered when the app
# is ready (``apps.py``), so this module never imports the tasks that call it. Unset (or
# the queue down): the row waits for the sweep, which sends it all the same.
Enqueuer = Callable[[int, dt.datetime | None], None]
_enqueuer: Enqueuer | None = None


def enqueuer_register(enqueue: Enqueuer) -> None:
    """Set how :func:`notification_enqueue` queues a committed row (``enqueue(pk, eta)``)."""
    global _enqueuer
    _enqueuer = enqueue


def _queue(pk: int, eta: dt.datetime | None = None) -> None:
    if _enqueuer is None:
        log.warning("no notification enqueuer registered; the sweep will send %s", pk)
        return
    try:
        _enqueuer(pk, eta)
    except Exception:
        # The row is committed; the sweep sends it even if the queue is unreachable.
        log.exception("enqueue of notification %s failed; the sweep will send it", pk)


def _deliver_now_or_queue(pk: int) -> None:
    try:
        notification_deliver(notification_id=pk)
    except Exception:
        log.exception("urgent notification %s: synchronous attempt failed; queued", pk)
        _queue(pk)


def notify_user(
    *,
    user: User,
    template: str,
    params: dict[str, Any],
    dedupe_key: str,
    urgent: bool = False,
    now: dt.datetime | None = None,
) -> list[Notification]:
    """A notice to one person: in-app, plus the first external channel they can
    be reached on (WeChat subscribe message with an unused grant, Alipay
    template message, SMS) and have not turned off. Urgent notices ignore the
    user's preferences and quiet hours (a critical alert cannot be opted out of)."""
    rows: list[Notification] = []

    def allowed(channel: str) -> bool:
        return urgent or channel_enabled(user, channel)

    if allowed(Channel.INAPP):
        rows.append(
            notification_enqueue(
                channel=Channel.INAPP,
                template=template,
                params=params,
                user=user,
                dedupe_key=f"{dedupe_key}:inapp",
                urgent=urgent,
                now=now,
            )
        )
    for channel in NOTICE_ORDER:
        if not allowed(channel):
            continue
        recipient = _recipient(user, channel, template)
        if recipient:
            row = notification_enqueue(
                channel=channel,
                template=template,
                params=params,
                user=user,
                recipient=recipient,
                dedupe_key=f"{dedupe_key}:{channel}",
                urgent=urgent,
                now=now,
            )
            if channel == Channel.WECHAT_SUBSCRIBE:
                _reserve_grant(user, template, row)
            rows.append(row)
            break
    return rows


def _reserve_grant(user: User, template: str, row: Notification) -> None:
    # One grant allows one message: the row that will use it holds it from now on.
    if SubscriptionGrant.objects.filter(used_by=row).exists():
        return
    grant = (
        SubscriptionGrant.objects.select_for_update()
        .filter(user=user, template=template, used_at__isnull=True, used_by__isnull=True)
        .order_by("granted_at")
        .first()
    )
    if grant is not None:
        grant.used_by = row
        grant.save(update_fields=["used_by"])


def _recipient(user: User, channel: str, template: str) -> str:
    if channel == Channel.SMS:
        return user.phone or ""
    platform = "weixin" if channel == Channel.WECHAT_SUBSCRIBE else "alipay"
    identity = MiniProgramIdentity.objects.filter(user=user, platform=platform).first()
    if identity is None:
        return ""
    if (
        channel == Channel.WECHAT_SUBSCRIBE
        and not SubscriptionGrant.objects.filter(
            user=user, template=template, used_at__isnull=True, used_by__isnull=True
        ).exists()
    ):
        return ""
    return identity.openid


def subscription_grant(*, user: User, template: str) -> SubscriptionGrant:
    """The mini-program reports that the user accepted one subscribe message."""
    return SubscriptionGrant.objects.create(user=user, template=template)


# --- delivery -----------------------------------------------------------------------------


def _claim(pk: int, now: dt.datetime) -> Notification | None:
    with transaction.atomic():
        row = (
            Notification.objects.select_for_update(skip_locked=True)
            .filter(pk=pk, status=Notification.Status.PENDING, next_attempt_at__lte=now)
            .first()
        )
        if row is None:
            return None
        row.status = Notification.Status.SENDING
        row.attempts += 1
        row.lease_until = now + _lease()
        row.save(update_fields=["status", "attempts", "lease_until"])
        return row


def notification_deliver(*, notification_id: int, now: dt.datetime | None = None) -> str:
    """One attempt at one row; returns its status afterwards. Safe to call
    twice or concurrently: only the caller that claims the row sends."""
    now = now or timezone.now()
    row = _claim(notification_id, now)
    if row is None:
        current = Notification.objects.filter(pk=notification_id).values_list("status", flat=True).first()
        return current or ""
    msg = Outgoing(
        notification_id=row.pk,
        channel=row.channel,
        template=row.template,
        recipient=crypto.decrypt(row.recipient_enc, context="notification.recipient") if row.recipient_enc else "",
        params=json.loads(crypto.decrypt(row.params_enc, context="notification.params")),
        user_id=row.user_id,
    )
    try:
        provider_id = adapter_for(row.channel).send(msg)
    except SendError as exc:
        return _failed(row, str(exc), retryable=exc.retryable, now=now)
    except SandboxInProduction as exc:
        # Misconfigured, not crashed: the row waits (and retries) until the real adapter is set.
        return _failed(row, str(exc), retryable=True, now=now)
    except Exception as exc:
        log.exception("notification %s: adapter crashed", row.pk)
        return _failed(row, f"{type(exc).__name__}: {exc}", retryable=True, now=now)
    Notification.objects.filter(pk=row.pk).update(
        status=Notification.Status.SENT,
        sent_at=timezone.now(),
        lease_until=None,
        last_error="",
        provider_message_id=provider_id[:128],
    )
    return Notification.Status.SENT


def _failed(row: Notification, error: str, *, retryable: bool, now: dt.datetime) -> str:
    error = error[:500]
    if retryable and row.attempts < _max_attempts():
        next_at = now + retry_delay(row.attempts)
        Notification.objects.filter(pk=row.pk).update(
            status=Notification.Status.PENDING, next_attempt_at=next_at, lease_until=None, last_error=error
        )
        log.warning("notification %s attempt %s failed (%s); retry at %s", row.pk, row.attempts, error, next_at)
        transaction.on_commit(lambda: _queue(row.pk, next_at))
        return Notification.Status.PENDING
    Notification.objects.filter(pk=row.pk).update(status=Notification.Status.FAILED, lease_until=None, last_error=error)
    log.error("notification %s failed after %s attempts: %s", row.pk, row.attempts, error)
    return Notification.Status.FAILED


def notifications_sweep(*, now: dt.datetime | None = None, limit: int = 200) -> dict[str, int]:
    """Deliver what is due but was never (or no longer) queued: a lost enqueue,
    a retry whose scheduled task vanished, a worker that died mid-send (its
    lease ran out; the attempt counts)."""
    now = now or timezone.now()
    expired = Notification.objects.filter(status=Notification.Status.SENDING, lease_until__lt=now)
    reclaimed = 0
    for row in expired[:limit]:
        reclaimed += Notification.objects.filter(pk=row.pk, status=Notification.Status.SENDING).update(
            status=Notification.Status.PENDING, lease_until=None, last_error="worker lost mid-send"
        )
    due = list(
        Notification.objects.filter(status=Notification.Status.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    counts = {"reclaimed": reclaimed, "due": len(due), "sent": 0, "failed": 0}
    for pk in due:
        status = notification_deliver(notification_id=pk, now=now)
        if status == Notification.Status.SENT:
            counts["sent"] += 1
        elif status == Notification.Status.FAILED:
            counts["failed"] += 1
    return counts


# --- reads used by the API ----------------------------------------------------------------


def notification_params(row: Notification) -> dict[str, Any]:
    params: dict[str, Any] = json.loads(crypto.decrypt(row.params_enc, context="notification.params"))
    return params


def sandbox_inbox_visible() -> bool:
    """The demo's login page may show the sandbox SMS: never in production."""
    return bool(getattr(settings, "SANDBOX_INBOX_VISIBLE", False)) and not settings.PRODUCTION
