"""The outbox: one row per send, delivered once, retried with backoff, never lost."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection, transaction
from django.utils import timezone

from apps.accounts.models import MiniProgramIdentity, SandboxOutbox
from apps.notifications import services
from apps.notifications.models import Notification, QuietHours, SubscriptionGrant
from apps.notifications.tasks import send_notification
from hub import crypto
from tests.conftest import make_patient

pytestmark = pytest.mark.django_db

PHONE = "13800001111"


def sms_to(phone: str) -> list[str]:
    return list(
        SandboxOutbox.objects.filter(recipient_hash=crypto.lookup_hash(phone, context="phone")).values_list(
            "body", flat=True
        )
    )


def enqueue_code(capture, phone: str = PHONE, key: str = "t:1", code: str = "123456") -> Notification:
    with capture(execute=True):
        return services.notification_enqueue(
            channel="sms", template="login_code", params={"code": code}, recipient=phone, dedupe_key=key, urgent=True
        )


def test_a_failing_send_is_retried_with_backoff_then_failed_never_lost(
    settings, django_capture_on_commit_callbacks
) -> None:
    settings.SANDBOX_UNREACHABLE_RECIPIENTS = [PHONE]
    settings.NOTIFY_MAX_ATTEMPTS = 3
    settings.NOTIFY_RETRY_BASE_SECONDS = 30
    row = enqueue_code(django_capture_on_commit_callbacks)
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("pending", 1)
    assert "gateway_unreachable" in row.last_error
    first_retry = row.next_attempt_at
    assert dt.timedelta(seconds=29) < first_retry - row.created_at < dt.timedelta(seconds=31)
    # Not due yet: the sweep leaves it alone.
    assert services.notifications_sweep(now=first_retry - dt.timedelta(seconds=1))["due"] == 0
    services.notifications_sweep(now=first_retry)
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("pending", 2)
    assert row.next_attempt_at - first_retry == dt.timedelta(seconds=60)  # doubled
    services.notifications_sweep(now=row.next_attempt_at)
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("failed", 3)
    assert "gateway_unreachable" in row.last_error
    assert sms_to(PHONE) == []
    # Failed rows stay; later sweeps do not touch them.
    assert services.notifications_sweep(now=timezone.now() + dt.timedelta(days=1))["due"] == 0
    assert Notification.objects.filter(pk=row.pk, status="failed").exists()


def test_a_send_that_fails_once_arrives_on_the_retry(settings, django_capture_on_commit_callbacks) -> None:
    settings.SANDBOX_UNREACHABLE_RECIPIENTS = [PHONE]
    row = enqueue_code(django_capture_on_commit_callbacks)
    settings.SANDBOX_UNREACHABLE_RECIPIENTS = []  # the gateway is back
    row.refresh_from_db()
    services.notifications_sweep(now=row.next_attempt_at)
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_error) == ("sent", 2, "")
    assert len(sms_to(PHONE)) == 1


def test_a_permanent_refusal_fails_at_once(django_capture_on_commit_callbacks) -> None:
    row = enqueue_code(django_capture_on_commit_callbacks, phone="12345")
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("failed", 1) and "mobile_number_illegal" in row.last_error


def test_two_enqueues_with_one_dedupe_key_send_once(django_capture_on_commit_callbacks) -> None:
    a = enqueue_code(django_capture_on_commit_callbacks, key="same")
    b = enqueue_code(django_capture_on_commit_callbacks, key="same", code="654321")
    assert a.pk == b.pk and Notification.objects.count() == 1
    # A duplicate task for the sent row is a no-op too.
    assert send_notification.call_local(a.pk) == "sent"
    assert services.notification_deliver(notification_id=a.pk) == "sent"
    assert sms_to(PHONE) == ["【互联网医院】您的登录验证码为123456，5分钟内有效。如非本人操作请忽略。"]


def test_nothing_is_sent_for_a_rolled_back_action(django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            services.notification_enqueue(channel="sms", template="login_code", params={"code": "1"}, recipient=PHONE)
            raise RuntimeError
    assert callbacks == [] and not Notification.objects.exists() and sms_to(PHONE) == []


def test_a_lost_enqueue_or_a_dead_worker_is_swept_up(django_capture_on_commit_callbacks) -> None:
    # No commit callback ran (the enqueue was lost): the row waits, the sweep sends it.
    lost = services.notification_enqueue(channel="sms", template="login_code", params={"code": "1"}, recipient=PHONE)
    # A worker claimed this one and died: its lease runs out.
    dead = services.notification_enqueue(
        channel="sms", template="login_code", params={"code": "2"}, recipient="13800002222"
    )
    Notification.objects.filter(pk=dead.pk).update(
        status="sending", attempts=1, lease_until=timezone.now() - dt.timedelta(seconds=1)
    )
    counts = services.notifications_sweep()
    assert counts == {"reclaimed": 1, "due": 2, "sent": 2, "failed": 0}
    assert Notification.objects.get(pk=lost.pk).status == "sent"
    assert Notification.objects.get(pk=dead.pk).attempts == 2
    assert len(sms_to(PHONE)) == 1 and len(sms_to("13800002222")) == 1


def test_codes_and_recipients_are_encrypted_at_rest(django_capture_on_commit_callbacks) -> None:
    enqueue_code(django_capture_on_commit_callbacks, code="987654")
    with connection.cursor() as cur:
        cur.execute("SELECT recipient_enc, params_enc, recipient_hash FROM notifications_notification")
        raw = " ".join(str(v) for v in cur.fetchone())
    assert "987654" not in raw and PHONE not in raw and raw.startswith("v1:")


def _quiet_around_now(user) -> None:
    local = timezone.localtime(timezone.now(), dt.timezone(dt.timedelta(hours=8)))
    start = (local - dt.timedelta(hours=1)).time().replace(second=0, microsecond=0)
    end = (local + dt.timedelta(hours=1)).time().replace(second=0, microsecond=0)
    QuietHours.objects.create(user=user, start=start, end=end)


def test_quiet_hours_defer_a_normal_notice_and_not_an_urgent_one(django_capture_on_commit_callbacks) -> None:
    p = make_patient("13800003333")
    _quiet_around_now(p.user)
    with django_capture_on_commit_callbacks(execute=True):
        normal = services.notify_user(
            user=p.user, template="notice", params={"title": "复诊提醒", "text": "明天上午"}, dedupe_key="n:1"
        )
    assert [r.channel for r in normal] == ["inapp", "sms"]
    for row in normal:
        row.refresh_from_db()
        assert row.status == "pending" and row.deferred_by_quiet_hours
        assert row.next_attempt_at > timezone.now() + dt.timedelta(minutes=50)
    assert sms_to("13800003333") == []
    assert services.notifications_sweep()["due"] == 0  # still quiet
    with django_capture_on_commit_callbacks(execute=True):
        services.notify_user(
            user=p.user,
            template="notice",
            params={"title": "危急", "text": "请立即处理"},
            dedupe_key="u:1",
            urgent=True,
        )
    assert sms_to("13800003333") == ["【互联网医院】危急：请立即处理"]
    # When the quiet hours end the deferred notice goes out.
    services.notifications_sweep(now=normal[1].next_attempt_at)
    assert sorted(sms_to("13800003333")) == sorted(
        ["【互联网医院】危急：请立即处理", "【互联网医院】复诊提醒：明天上午"]
    )


def test_preferences_are_respected(django_capture_on_commit_callbacks) -> None:
    p = make_patient("13800004444")
    services.preference_set(user=p.user, channel="sms", enabled=False)
    with django_capture_on_commit_callbacks(execute=True):
        rows = services.notify_user(
            user=p.user, template="notice", params={"title": "t", "text": "x"}, dedupe_key="p:1"
        )
    assert [r.channel for r in rows] == ["inapp"]
    assert sms_to("13800004444") == []
    # Urgent notices cannot be opted out of.
    with django_capture_on_commit_callbacks(execute=True):
        rows = services.notify_user(
            user=p.user, template="notice", params={"title": "t", "text": "y"}, dedupe_key="p:2", urgent=True
        )
    assert [r.channel for r in rows] == ["inapp", "sms"] and sms_to("13800004444") == ["【互联网医院】t：y"]
    services.preference_set(user=p.user, channel="inapp", enabled=False)
    services.preference_set(user=p.user, channel="sms", enabled=True)
    rows = services.notify_user(user=p.user, template="notice", params={"title": "t", "text": "z"}, dedupe_key="p:3")
    assert [r.channel for r in rows] == ["sms"]


def test_wechat_subscribe_needs_openid_and_a_one_time_grant(django_capture_on_commit_callbacks) -> None:
    p = make_patient("13800005555")
    MiniProgramIdentity.objects.create(user=p.user, platform="weixin", openid="o-wx-1")
    SubscriptionGrant.objects.create(user=p.user, template="notice")
    with django_capture_on_commit_callbacks(execute=True):
        first = services.notify_user(
            user=p.user, template="notice", params={"title": "a", "text": "1"}, dedupe_key="w1"
        )
        second = services.notify_user(
            user=p.user, template="notice", params={"title": "b", "text": "2"}, dedupe_key="w2"
        )
    assert [r.channel for r in first] == ["inapp", "wechat_subscribe"]
    assert Notification.objects.get(pk=first[1].pk).status == "sent"
    assert SandboxOutbox.objects.filter(channel="wechat_subscribe", body="a|1").count() == 1
    # The grant is used up: the next notice falls back to SMS.
    assert [r.channel for r in second] == ["inapp", "sms"]
    # Sent without a grant, the sandbox refuses like WeChat (43101), for good.
    with django_capture_on_commit_callbacks(execute=True):
        row = services.notification_enqueue(
            channel="wechat_subscribe",
            template="notice",
            params={"title": "c", "text": "3"},
            user=p.user,
            recipient="o-wx-1",
        )
    row.refresh_from_db()
    assert row.status == "failed" and "43101" in row.last_error


def test_alipay_template_needs_the_alipay_user_id(django_capture_on_commit_callbacks) -> None:
    p = make_patient("13800006666")
    MiniProgramIdentity.objects.create(user=p.user, platform="alipay", openid="2088000000000001")
    with django_capture_on_commit_callbacks(execute=True):
        rows = services.notify_user(user=p.user, template="notice", params={"title": "a", "text": "1"}, dedupe_key="al")
        bare = services.notification_enqueue(
            channel="alipay_template", template="notice", params={"title": "a", "text": "1"}, user=p.user
        )
    assert [r.channel for r in rows] == ["inapp", "alipay_template"]
    assert SandboxOutbox.objects.filter(channel="alipay_template").count() == 1
    bare.refresh_from_db()
    assert bare.status == "failed" and "invalid-user-id" in bare.last_error
