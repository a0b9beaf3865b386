"""Find recordings and obtain replay URLs (staff console)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field

from apps.accounts.roles import CLINICAL_ROLES, Role
from hub.auth import require_roles
from hub.errors import HubCode, NotFound, errors
from hub.pagination import PageParams, page

from .errors import RecordingCode
from .models import Recording
from .services import recording_legal_hold, recording_replay

router = Router()


class RecordingOut(Schema):
    public_id: uuid.UUID
    room_id: str
    status: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    duration_seconds: float
    size: int
    retain_until: dt.date
    legal_hold: bool


class RecordingList(Schema):
    items: list[RecordingOut]
    count: int


class ReplayOut(Schema):
    url: str
    expires_at: dt.datetime
    integrity_ok: bool


class LegalHoldIn(Schema):
    hold: bool
    reason: str = Field("", max_length=200)


def _rows(items: list[Recording]) -> list[dict[str, Any]]:
    return [{f: getattr(r, f) for f in RecordingOut.model_fields} for r in items]


def _get(public_id: uuid.UUID) -> Recording:
    recording = Recording.objects.filter(public_id=public_id).first()
    if recording is None:
        raise NotFound("录像")
    return recording


@router.get(
    "/", response={200: RecordingList, **errors(HubCode.FORBIDDEN, HubCode.VALIDATION_ERROR)}, summary="查找录像"
)
def recordings_find(request: HttpRequest, params: Query[PageParams], room_id: str = "") -> dict[str, Any]:
    user = require_roles(request, [*CLINICAL_ROLES, Role.SECADMIN])
    qs = Recording.objects.all()
    if user.role != Role.SECADMIN:
        qs = qs.filter(participants=user)
    if room_id:
        qs = qs.filter(room_id=room_id[:64])
    return page(qs, params, _rows)


@router.post(
    "/{public_id}/replay",
    response={
        200: ReplayOut,
        **errors(
            HubCode.FORBIDDEN,
            HubCode.NOT_FOUND,
            RecordingCode.REPLAY_REFUSED,
            RecordingCode.MANIFEST_INVALID,
            HubCode.VALIDATION_ERROR,
        ),
    },
    summary="获取回放地址",
)
def recordings_replay(request: HttpRequest, public_id: uuid.UUID) -> dict[str, Any]:
    user = require_roles(request, CLINICAL_ROLES)
    return recording_replay(recording=_get(public_id), user=user, sid=request.auth_token.pk)  # type: ignore[attr-defined]


@router.post(
    "/{public_id}/legal-hold",
    response={
        200: RecordingOut,
        **errors(HubCode.FORBIDDEN, HubCode.NOT_FOUND, RecordingCode.TRANSITION_REFUSED, HubCode.VALIDATION_ERROR),
    },
    summary="设置或解除法律保全",
)
def recordings_legal_hold(request: HttpRequest, public_id: uuid.UUID, payload: LegalHoldIn) -> Recording:
    user = require_roles(request, [Role.SECADMIN])
    return recording_legal_hold(recording=_get(public_id), actor=user, hold=payload.hold, reason=payload.reason)
