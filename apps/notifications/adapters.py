"""Adapters to the parties that carry a message: SMS gateway, WeChat subscribe
messages, Alipay template messages, and the in-app inbox.

Every adapter takes one ``Outgoing`` and returns the provider's message id or
raises ``SendError``. The sandbox versions work offline, record what they
would have sent in ``accounts.SandboxOutbox`` (the inbox tests and the demo
read) and enforce what the real services enforce: an SMS needs a mainland
mobile number, a WeChat subscribe message needs the user's openid and an
unused one-time subscription grant for the template, an Alipay template
message needs the user's Alipay user id. ``SANDBOX_UNREACHABLE_RECIPIENTS``
makes the gateway fail for listed phones/openids, so retry and backoff can be
tested without mocks."""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from typing import Any, Protocol

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.accounts.models import SandboxOutbox
from hub import crypto
from hub.outside import load

from .errors import SendError
from .models import Channel, SubscriptionGrant

log = logging.getLogger(__name__)

# Message text per template and channel (the real gateways take template ids
# and parameters; the sandbox renders the text a person would read).
TEMPLATES: dict[str, dict[str, str]] = {
    "login_code": {
        Channel.SMS: "【互联网医院】您的登录验证码为{code}，5分钟内有效。如非本人操作请忽略。",
    },
    "notice": {
        Channel.INAPP: "{title}：{text}",
        Channel.SMS: "【互联网医院】{title}：{text}",
        Channel.WECHAT_SUBSCRIBE: "{title}|{text}",
        Channel.ALIPAY_TEMPLATE: "{title}|{text}",
    },
}

PHONE_RE = re.compile(r"^1[3-9]\d{9}$")
# The keyed-hash context of each channel's recipient (the same as accounts uses for phones).
RECIPIENT_CONTEXT = {
    Channel.SMS: "phone",
    Channel.WECHAT_SUBSCRIBE: "openid",
    Channel.ALIPAY_TEMPLATE: "alipay_user_id",
    Channel.INAPP: "user",
}


@dataclass(frozen=True)
class Outgoing:
    notification_id: int
    channel: str
    template: str
    recipient: str
    params: dict[str, Any]
    user_id: int | None


class ChannelAdapter(Protocol):
    def send(self, msg: Outgoing) -> str: ...


def render(template: str, channel: str, params: dict[str, Any]) -> str:
    try:
        return TEMPLATES[template][channel].format(**params)
    except KeyError as exc:
        raise SendError("template", f"no {channel} text for template {template}", retryable=False) from exc


def _gateway_down(recipient: str) -> None:
    if recipient in getattr(settings, "SANDBOX_UNREACHABLE_RECIPIENTS", []):
        raise SendError("gateway_unreachable", "sandbox gateway did not answer")


class InAppAdapter:
    """The row itself is the in-app message; delivering it means it is visible."""

    def send(self, msg: Outgoing) -> str:
        if msg.user_id is None:
            raise SendError("no_user", "in-app message needs a user", retryable=False)
        return f"inapp-{msg.notification_id}"


class DisabledChannel:
    """A channel this deployment does not use (no Alipay mini-program, say): every
    send fails for good, so the row is marked failed. Not a sandbox: production
    may run it."""

    def send(self, msg: Outgoing) -> str:
        raise SendError("channel_disabled", f"channel {msg.channel} is not configured", retryable=False)


class SandboxSms:
    sandbox = True  # refused in production (hub.outside)

    def send(self, msg: Outgoing) -> str:
        if not PHONE_RE.match(msg.recipient):
            # Like the real gateway's isv.MOBILE_NUMBER_ILLEGAL: trying again cannot help.
            raise SendError("mobile_number_illegal", "not a mainland mobile number", retryable=False)
        _gateway_down(msg.recipient)
        body = render(msg.template, Channel.SMS, msg.params)
        SandboxOutbox.objects.create(
            channel="sms", recipient_hash=crypto.lookup_hash(msg.recipient, context="phone"), body=body
        )
        log.info("sandbox SMS to %s (%s)", crypto.mask_phone(msg.recipient), msg.template)
        return f"sbx-sms-{secrets.token_hex(8)}"


class SandboxWechatSubscribe:
    sandbox = True  # refused in production (hub.outside)

    def send(self, msg: Outgoing) -> str:
        if not msg.recipient or msg.user_id is None:
            raise SendError("40003", "invalid openid", retryable=False)
        _gateway_down(msg.recipient)
        with transaction.atomic():
            grant = (
                SubscriptionGrant.objects.select_for_update()
                .filter(user_id=msg.user_id, template=msg.template, used_at__isnull=True)
                .filter(Q(used_by_id=msg.notification_id) | Q(used_by__isnull=True))
                .order_by("used_by_id", "granted_at")
                .first()
            )
            if grant is None:
                # WeChat's 43101 "user refuse to accept the msg": no unused grant.
                raise SendError("43101", "no subscription grant", retryable=False)
            grant.used_at = timezone.now()
            grant.used_by_id = msg.notification_id
            grant.save(update_fields=["used_at", "used_by"])
            SandboxOutbox.objects.create(
                channel="wechat_subscribe",
                recipient_hash=crypto.lookup_hash(msg.recipient, context="openid"),
                body=render(msg.template, Channel.WECHAT_SUBSCRIBE, msg.params),
            )
        return f"sbx-wx-{secrets.token_hex(8)}"


class SandboxAlipayTemplate:
    sandbox = True  # refused in production (hub.outside)

    def send(self, msg: Outgoing) -> str:
        if not msg.recipient:
            raise SendError("isv.invalid-user-id", "missing alipay user id", retryable=False)
        _gateway_down(msg.recipient)
        SandboxOutbox.objects.create(
            channel="alipay_template",
            recipient_hash=crypto.lookup_hash(msg.recipient, context="alipay_user_id"),
            body=render(msg.template, Channel.ALIPAY_TEMPLATE, msg.params),
        )
        return f"sbx-ali-{secrets.token_hex(8)}"


DEFAULT_ADAPTERS = {
    Channel.INAPP: "apps.notifications.adapters.InAppAdapter",
    Channel.SMS: "apps.notifications.adapters.SandboxSms",
    Channel.WECHAT_SUBSCRIBE: "apps.notifications.adapters.SandboxWechatSubscribe",
    Channel.ALIPAY_TEMPLATE: "apps.notifications.adapters.SandboxAlipayTemplate",
}


def _adapter_path(channel: str) -> str:
    return str(getattr(settings, "NOTIFY_ADAPTERS", {}).get(channel) or DEFAULT_ADAPTERS[Channel(channel)])


def configured_adapter_paths() -> list[str]:
    return [_adapter_path(channel) for channel in Channel]


def adapter_for(channel: str) -> ChannelAdapter:
    """The channel's adapter; a sandbox in production raises ``hub.outside.SandboxInProduction``."""
    adapter: ChannelAdapter = load(_adapter_path(channel), label=f"NOTIFY_ADAPTERS[{channel}]")()
    return adapter
