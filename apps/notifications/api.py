"""/api/v1/notifications/: my in-app inbox, my channel preferences and quiet
hours, WeChat subscribe grants, and the demo's sandbox SMS inbox."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router

from apps.accounts.models import MiniProgramIdentity, SandboxOutbox, User
from hub import crypto
from hub.errors import HubCode, errors

from . import services
from .adapters import PHONE_RE
from .errors import NotificationCode, NotificationError
from .models import Channel, Notification, QuietHours, SubscriptionGrant
from .schemas import InboxOut, PreferencesIn, PreferencesOut, SandboxSmsOut, SubscriptionIn, SubscriptionOut

router = Router()
INBOX_MAX = 50


def _user(request: HttpRequest) -> User:
    user: User = request.auth  # type: ignore[attr-defined]
    return user


@router.get("/inbox", response={200: InboxOut, **errors()})
def inbox(request: HttpRequest) -> dict[str, Any]:
    rows = Notification.objects.filter(
        user=_user(request), channel=Channel.INAPP, status=Notification.Status.SENT
    ).order_by("-created_at")[:INBOX_MAX]
    items = []
    for row in rows:
        params = services.notification_params(row)
        items.append(
            {
                "id": row.pk,
                "template": row.template,
                "title": str(params.get("title", "")),
                "text": str(params.get("text", "")),
                "created_at": row.created_at,
                "read": row.read_at is not None,
            }
        )
    return {"items": items}


def _preferences(user: User) -> dict[str, Any]:
    quiet = QuietHours.objects.filter(user=user).first()
    return {
        "channels": [
            {"channel": c.value, "label": c.label, "enabled": services.channel_enabled(user, c.value)} for c in Channel
        ],
        "quiet_start": quiet.start if quiet else None,
        "quiet_end": quiet.end if quiet else None,
    }


@router.get("/preferences", response={200: PreferencesOut, **errors()})
def preferences_get(request: HttpRequest) -> dict[str, Any]:
    return _preferences(_user(request))


@router.put(
    "/preferences",
    response={
        200: PreferencesOut,
        **errors(NotificationCode.UNKNOWN_CHANNEL, NotificationCode.BAD_QUIET_HOURS, HubCode.VALIDATION_ERROR),
    },
)
def preferences_put(request: HttpRequest, payload: PreferencesIn) -> dict[str, Any]:
    user = _user(request)
    for channel, enabled in payload.channels.items():
        if channel not in Channel.values:
            raise NotificationError(NotificationCode.UNKNOWN_CHANNEL, channel=channel)
        services.preference_set(user=user, channel=channel, enabled=enabled)
    if (payload.quiet_start is None) != (payload.quiet_end is None):
        raise NotificationError(NotificationCode.BAD_QUIET_HOURS)
    services.quiet_hours_set(user=user, start=payload.quiet_start, end=payload.quiet_end)
    return _preferences(user)


@router.post(
    "/subscriptions",
    response={200: SubscriptionOut, **errors(NotificationCode.NO_WECHAT_IDENTITY, HubCode.VALIDATION_ERROR)},
)
def subscription_create(request: HttpRequest, payload: SubscriptionIn) -> dict[str, Any]:
    """The WeChat mini-program reports one accepted ``wx.requestSubscribeMessage``."""
    user = _user(request)
    if not MiniProgramIdentity.objects.filter(user=user, platform="weixin").exists():
        raise NotificationError(NotificationCode.NO_WECHAT_IDENTITY)
    services.subscription_grant(user=user, template=payload.template)
    unused = SubscriptionGrant.objects.filter(user=user, template=payload.template, used_at__isnull=True).count()
    return {"template": payload.template, "unused_grants": unused}


@router.get("/sandbox/sms", response={200: SandboxSmsOut, **errors(HubCode.VALIDATION_ERROR, auth=False)}, auth=None)
def sandbox_sms(request: HttpRequest, phone: str = "") -> dict[str, Any]:
    """The latest sandbox SMS to ``phone``, for the demo's login page. Answers
    ``visible: false`` (and nothing else) unless the embedded demo turned the
    inbox on; never visible in production (settings refuse to start so)."""
    if not services.sandbox_inbox_visible():
        return {"visible": False, "text": "", "sent_at": None}
    phone = phone.strip()
    if not PHONE_RE.match(phone):
        return {"visible": True, "text": "", "sent_at": None}
    sms = (
        SandboxOutbox.objects.filter(channel="sms", recipient_hash=crypto.lookup_hash(phone, context="phone"))
        .order_by("-id")
        .first()
    )
    if sms is None:
        return {"visible": True, "text": "", "sent_at": None}
    return {"visible": True, "text": sms.body, "sent_at": sms.created_at}
