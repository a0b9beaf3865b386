"""The one notification outbox, and what a user chose about being told.

Every send (in-app, SMS, WeChat subscribe message, Alipay template message)
is one ``Notification`` row written in the caller's transaction; the huey task
and the periodic sweep deliver it (docs/adr/0033-notifications.md)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Channel(models.TextChoices):
    INAPP = "inapp", "站内消息"
    SMS = "sms", "短信"
    WECHAT_SUBSCRIBE = "wechat_subscribe", "微信订阅消息"
    ALIPAY_TEMPLATE = "alipay_template", "支付宝模板消息"


class Notification(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "待发送"  # waiting for its attempt (new, retry due, or deferred by quiet hours)
        SENDING = "sending", "发送中"  # claimed by one worker until lease_until
        SENT = "sent", "已发送"  # the adapter accepted it
        FAILED = "failed", "发送失败"  # out of attempts or refused for good; last_error says why

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    channel = models.CharField(max_length=24, choices=Channel.choices)
    template = models.CharField(max_length=64)
    # Phone, openid or Alipay user id: AES-GCM ciphertext, plus a keyed hash for lookups.
    recipient_enc = models.TextField(blank=True, default="")
    recipient_hash = models.CharField(max_length=64, blank=True, default="", db_index=True)
    # The template parameters as JSON, encrypted: they may hold a login code.
    params_enc = models.TextField()
    urgent = models.BooleanField(default=False)
    dedupe_key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    lease_until = models.DateTimeField(null=True, blank=True)
    deferred_by_quiet_hours = models.BooleanField(default=False)
    last_error = models.CharField(max_length=500, blank=True, default="")
    provider_message_id = models.CharField(max_length=128, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="notif_due_idx"),
            models.Index(fields=["user", "channel", "-created_at"], name="notif_user_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.channel}:{self.template}#{self.pk} {self.status}"


class Preference(models.Model):
    """A user's choice for one channel; no row means enabled."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_prefs")
    channel = models.CharField(max_length=24, choices=Channel.choices)
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "channel"], name="uniq_notification_pref")]


class QuietHours(models.Model):
    """Local (Asia/Shanghai) times during which non-urgent sends wait; may wrap midnight."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quiet_hours")
    start = models.TimeField()
    end = models.TimeField()


class SubscriptionGrant(models.Model):
    """A one-time WeChat subscribe-message grant (``wx.requestSubscribeMessage``
    accepted): it allows exactly one message of that template."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="subscription_grants")
    template = models.CharField(max_length=64)
    granted_at = models.DateTimeField(default=timezone.now)
    used_at = models.DateTimeField(null=True, blank=True)
    used_by = models.ForeignKey(Notification, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        indexes = [models.Index(fields=["user", "template", "used_at"], name="notif_grant_idx")]
