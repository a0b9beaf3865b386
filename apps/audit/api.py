from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Query, Router

from apps.accounts.roles import Role
from hub.auth import require_roles
from hub.errors import HubCode, errors
from hub.pagination import PageParams, page

from . import labels
from .errors import AuditCode, AuditError
from .export import CONTENT_TYPES, export_csv, export_xlsx
from .models import AuditEvent
from .schemas import AuditEventList, AuditFilterIn, ExportIn, LabelsOut, VerifyOut
from .selectors import BEIJING, AuditFilter, event_rows, events_matching, iter_event_rows
from .services import audit_record, audit_verify_chain

router = Router()

# Who may read the audit log: the auditor only (the admins never, 三权分立).
READERS = [Role.AUDITOR]
EXPORT_MAX_ROWS = 50_000


def export_limit() -> int:
    return int(getattr(settings, "AUDIT_EXPORT_MAX_ROWS", EXPORT_MAX_ROWS))


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    # A time without an offset is a Beijing wall-clock time (what the console's pickers show).
    if value is None or timezone.is_aware(value):
        return value
    return timezone.make_aware(value, BEIJING)


def _filter(params: AuditFilterIn) -> AuditFilter:
    f = AuditFilter(
        person=params.person.strip(),
        patient=params.patient.strip(),
        action=params.action.strip(),
        result=params.result,
        since=_aware(params.since),
        until=_aware(params.until),
    )
    if f.since and f.until and f.since > f.until:
        raise AuditError(AuditCode.RANGE_INVALID)
    return f


@router.get(
    "/labels",
    response={200: LabelsOut, **errors(HubCode.FORBIDDEN)},
    summary="审计日志的中文名称表（操作、对象类型、结果）",
)
def audit_labels(request: HttpRequest) -> dict[str, Any]:
    require_roles(request, READERS)
    return labels.label_tables()


@router.get(
    "/events",
    response={200: AuditEventList, **errors(HubCode.FORBIDDEN, AuditCode.RANGE_INVALID)},
    summary="审计日志（按操作人、就诊人、操作、结果、时间筛选，最新在前）",
)
def events(request: HttpRequest, params: Query[PageParams], filters: Query[AuditFilterIn]) -> dict[str, Any]:
    user = require_roles(request, READERS)
    f = _filter(filters)
    # Reading the audit log is itself audited.
    audit_record(action="audit.read", actor=user, detail=f.as_detail())
    return page(events_matching(f), params, event_rows)


@router.get(
    "/events/export",
    response=errors(HubCode.FORBIDDEN, AuditCode.RANGE_INVALID, AuditCode.EXPORT_TOO_LARGE),
    summary="导出审计日志（当前筛选条件，CSV 或 Excel）",
    openapi_extra={
        "responses": {
            200: {
                "description": "附件下载：CSV（text/csv，UTF-8 带 BOM）或 Excel（xlsx），中文表头，北京时间",
                "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            }
        }
    },
)
def events_export(request: HttpRequest, filters: Query[ExportIn]) -> HttpResponse:
    user = require_roles(request, READERS)
    f = _filter(filters)
    fmt = filters.format
    # Rows appended while the file is written (this export's own record among them) stay out,
    # so the count checked, the rows written and the count audited agree.
    top = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    qs = events_matching(f).filter(id__lte=top)
    count, limit = qs.count(), export_limit()
    audited = {**f.as_detail(), "format": fmt}
    if count > limit:
        audit_record(
            action="audit.export",
            actor=user,
            result=AuditEvent.Result.FAILED,
            detail={**audited, "count": count, "limit": limit},
        )
        raise AuditError(AuditCode.EXPORT_TOO_LARGE, count=count, limit=limit)
    data, rows = (export_xlsx if fmt == "xlsx" else export_csv)(iter_event_rows(qs))
    audit_record(action="audit.export", actor=user, detail={**audited, "rows": rows})
    stamp = timezone.now().astimezone(BEIJING).strftime("%Y%m%d-%H%M%S")
    response = HttpResponse(data, content_type=CONTENT_TYPES[fmt])
    response["Content-Disposition"] = (
        f"attachment; filename=\"audit-log-{stamp}.{fmt}\"; filename*=UTF-8''{quote(f'审计日志-{stamp}.{fmt}')}"
    )
    response["X-Audit-Rows"] = str(rows)
    response["X-Content-Type-Options"] = "nosniff"
    return response


@router.post("/verify", response={200: VerifyOut, **errors(HubCode.FORBIDDEN)}, summary="校验审计日志链")
def verify(request: HttpRequest) -> dict[str, Any]:
    user = require_roles(request, READERS)
    result = audit_verify_chain()
    audit_record(action="audit.verify", actor=user, detail={"ok": result.ok, "first_bad_id": result.first_bad_id})
    return {"ok": result.ok, "checked": result.checked, "first_bad_id": result.first_bad_id}
