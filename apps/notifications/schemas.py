"""ninja schemas of /api/v1/notifications/ (explicit fields)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from ninja import Schema
from pydantic import AfterValidator, PlainSerializer, WithJsonSchema

# Quiet hours are Beijing wall-clock times: no offset (an RFC 3339 ``time`` needs one, so the
# schema is a pattern), whole seconds. An offset on the way in would be silently dropped and
# shift the hours, so it is refused.
_CLOCK = "^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$"
_CLOCK_IN = "^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"


def _wall_clock(value: dt.time) -> dt.time:
    if value.tzinfo is not None:
        raise ValueError("免打扰时间为北京时间，不能带时区")
    return value.replace(microsecond=0)


QuietTimeOut = Annotated[
    dt.time,
    PlainSerializer(lambda t: t.strftime("%H:%M:%S"), return_type=str),
    WithJsonSchema({"type": "string", "pattern": _CLOCK, "description": "北京时间 HH:MM:SS"}),
]
QuietTimeIn = Annotated[
    dt.time,
    AfterValidator(_wall_clock),
    WithJsonSchema({"type": "string", "pattern": _CLOCK_IN, "description": "北京时间 HH:MM 或 HH:MM:SS，不带时区"}),
]


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
    quiet_start: QuietTimeOut | None
    quiet_end: QuietTimeOut | None


class PreferencesIn(Schema):
    channels: dict[str, bool] = {}
    quiet_start: QuietTimeIn | None = None
    quiet_end: QuietTimeIn | None = None


class SubscriptionIn(Schema):
    template: str = "notice"


class SubscriptionOut(Schema):
    template: str
    unused_grants: int


class SandboxSmsOut(Schema):
    visible: bool
    text: str
    sent_at: dt.datetime | None
