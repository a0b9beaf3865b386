"""ninja schemas of /api/v1/notifications/ (explicit fields)."""

from __future__ import annotations

import datetime as dt

from ninja import Schema


class InboxItemOut(Schema):
    id: int
    template: str
    title: str
    text: str
    created_at: dt.datetime
    read: bool


class InboxOut(Schema):
    items: list[InboxItemOut]


class ChannelPrefOut(Schema):
    channel: str
    label: str
    enabled: bool


class PreferencesOut(Schema):
    channels: list[ChannelPrefOut]
    quiet_start: dt.time | None
    quiet_end: dt.time | None


class PreferencesIn(Schema):
    channels: dict[str, bool] = {}
    quiet_start: dt.time | None = None
    quiet_end: dt.time | None = None


class SubscriptionIn(Schema):
    template: str = "notice"


class SubscriptionOut(Schema):
    template: str
    unused_grants: int


class SandboxSmsOut(Schema):
    visible: bool
    text: str
    sent_at: dt.datetime | None
