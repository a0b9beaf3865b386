"""Adapters for reaching people who are not connected: WeChat subscribe
messages and SMS. The sandbox records what it would send (SandboxOutbox) and
enforces what the real services enforce: a WeChat subscribe message needs the
user's openid and a one-time subscription grant, an SMS needs a phone."""

from __future__ import annotations

import logging
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from apps.accounts.models import MiniProgramIdentity, SandboxOutbox, User
from hub import crypto

log = logging.getLogger(__name__)


class NoticeAdapter(Protocol):
    def send(self, *, user: User, title: str, text: str) -> str:
        """Returns the channel used ("wechat", "sms") or "" when none could be used."""
        ...


class SandboxNotice:
    def send(self, *, user: User, title: str, text: str) -> str:
        identity = MiniProgramIdentity.objects.filter(user=user, platform="weixin").first()
        if identity is not None:
            SandboxOutbox.objects.create(
                channel="wechat_subscribe",
                recipient_hash=crypto.lookup_hash(identity.openid, context="openid"),
                body=f"{title}|{text}",
            )
            return "wechat"
        phone = user.phone
        if phone:
            SandboxOutbox.objects.create(
                channel="sms",
                recipient_hash=crypto.lookup_hash(phone, context="phone"),
                body=f"【互联网医院】{title}：{text}",
            )
            return "sms"
        return ""


def notice_adapter() -> NoticeAdapter:
    adapter: NoticeAdapter = import_string(getattr(settings, "NOTICE_ADAPTER", "apps.im.notifications.SandboxNotice"))()
    return adapter
