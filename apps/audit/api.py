from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema

from apps.accounts.roles import Role
from hub.auth import require_roles
from hub.errors import HubCode, errors
from hub.pagination import PageParams, page

from .models import AuditEvent
from .services import audit_record, audit_verify_chain

router = Router()


class AuditEventOut(Schema):
    id: int
    at: dt.datetime
    actor_id: int | None
    actor_username: str
    actor_role: str
    ip: str
    action: str
    object_type: str
    object_id: str
    result: str
    request_id: str
    detail: dict[str, Any]


class AuditEventList(Schema):
    items: list[AuditEventOut]
    count: int


class VerifyOut(Schema):
    ok: bool
    checked: int
    first_bad_id: int | None


def _rows(events: list[AuditEvent]) -> list[dict[str, Any]]:
    return [{f: getattr(e, f) for f in AuditEventOut.model_fields} for e in events]


@router.get(
    "/events", response={200: AuditEventList, **errors(HubCode.FORBIDDEN, HubCode.VALIDATION_ERROR)}, summary="审计日志"
)
def events(request: HttpRequest, params: Query[PageParams], action: str = "", actor: str = "") -> dict[str, Any]:
    user = require_roles(request, [Role.AUDITOR])
    qs = AuditEvent.objects.order_by("-id")
    if action:
        qs = qs.filter(action__startswith=action[:64])
    if actor:
        qs = qs.filter(actor_username=actor[:150])
    # Reading the audit log is itself audited.
    audit_record(action="audit.read", actor=user, detail={"action": action[:64], "actor": actor[:150]})
    return page(qs, params, _rows)


@router.post("/verify", response={200: VerifyOut, **errors(HubCode.FORBIDDEN)}, summary="校验审计日志链")
def verify(request: HttpRequest) -> dict[str, Any]:
    user = require_roles(request, [Role.AUDITOR])
    result = audit_verify_chain()
    audit_record(action="audit.verify", actor=user, detail={"ok": result.ok, "first_bad_id": result.first_bad_id})
    return {"ok": result.ok, "checked": result.checked, "first_bad_id": result.first_bad_id}
