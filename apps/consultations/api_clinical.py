"""/api/v1/consultations/ (clinical parts): prior records (R1) and the HIS sync, the
visit record and its CA signature, third participants, the rating and the summary.
Mounted beside the booking router (``api.py``) under the same prefix.

Every object is checked against the caller in the services; any other id answers
the same 404, audited."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from ninja import File, Form, Router, Status
from ninja.files import UploadedFile

from apps.accounts.roles import Role
from apps.im.errors import ImCode
from apps.pharmacy.errors import PharmacyCode
from hub.auth import require_roles
from hub.errors import HubCode, errors

from . import invitations, prior_records, rating, record, summary
from .errors import ConsultCode
from .schemas import ConsultVisitOut
from .schemas_clinical import (
    ConsultInvitationOut,
    ConsultInviteIn,
    ConsultParticipantOut,
    ConsultPriorRecordOut,
    ConsultPriorReviewIn,
    ConsultRatingIn,
    ConsultRatingOut,
    ConsultRecordIn,
    ConsultRecordOut,
    ConsultRecordSignIn,
    ConsultRedeemIn,
    ConsultSummaryOut,
)
from .selectors import visit_row, visits_qs

router = Router()

OBJ = (HubCode.NOT_FOUND, HubCode.VALIDATION_ERROR)
CA_CODES = (
    PharmacyCode.CA_NO_CERTIFICATE,
    PharmacyCode.CA_CERT_EXPIRED,
    PharmacyCode.CA_CERT_REVOKED,
    PharmacyCode.CA_PIN_WRONG,
    PharmacyCode.CA_PIN_LOCKED,
    PharmacyCode.CA_PIN_FORMAT,
    PharmacyCode.CA_UNAVAILABLE,
    PharmacyCode.CONTENT_CHANGED,
)


def _user(request: HttpRequest) -> Any:
    return request.auth  # type: ignore[attr-defined]


# --- prior records ------------------------------------------------------------------


@router.get(
    "/patients/{patient_id}/prior-records",
    response={200: list[ConsultPriorRecordOut], **errors(*OBJ)},
    summary="就诊人的既往诊断（本院记录与上传病历）",
)
def prior_record_list(request: HttpRequest, patient_id: int) -> list[dict[str, Any]]:
    rows = prior_records.records_for(_user(request), patient_id)
    return [prior_records.record_view(r) for r in rows]


@router.post(
    "/patients/{patient_id}/prior-records/his-sync",
    response={200: list[ConsultPriorRecordOut], **errors(*OBJ, ConsultCode.HIS_UNAVAILABLE)},
    summary="从本院信息系统同步既往诊断",
)
def prior_record_his_sync(request: HttpRequest, patient_id: int) -> list[dict[str, Any]]:
    rows = prior_records.his_sync(user=_user(request), patient_id=patient_id)
    return [prior_records.record_view(r) for r in rows]


@router.post(
    "/patients/{patient_id}/prior-records",
    response={201: ConsultPriorRecordOut, **errors(*OBJ, ConsultCode.UPLOAD_INVALID)},
    summary="上传既往病历或出院小结（图片或PDF，待医生审核）",
)
def prior_record_upload(
    request: HttpRequest,
    patient_id: int,
    hospital: Form[str],
    visit_date: Form[dt.date],
    diagnosis: Form[str],
    summary: Form[str] = "",
    files: File[list[UploadedFile]] = None,  # type: ignore[assignment]
) -> Status[dict[str, Any]]:
    user = _user(request)
    uploads = list(files or [])
    limit = settings.CONSULT_PRIOR_FILE_MAX_MB * 1024 * 1024
    read = []
    for f in uploads[: settings.CONSULT_PRIOR_MAX_FILES + 1]:
        # An oversized file is refused on its declared size, never read into memory.
        data = f.read() if (f.size or 0) <= limit else f.read(limit + 1)
        read.append(prior_records.UploadFile(name=f.name or "", data=data))
    if len(uploads) > len(read):
        read.extend(prior_records.UploadFile(name="", data=b"") for _ in range(len(uploads) - len(read)))
    rec = prior_records.upload(
        user=user,
        patient_id=patient_id,
        hospital=hospital,
        visit_date=visit_date,
        diagnosis=diagnosis,
        summary=summary,
        files=read,
    )
    return Status(201, prior_records.record_view(rec))


@router.post(
    "/prior-records/{record_id}/review",
    response={200: ConsultPriorRecordOut, **errors(HubCode.FORBIDDEN, *OBJ)},
    summary="医生审核患者上传的既往病历",
)
def prior_record_review(request: HttpRequest, record_id: str, payload: ConsultPriorReviewIn) -> dict[str, Any]:
    doctor = require_roles(request, [Role.DOCTOR])
    rec = prior_records.review(user=doctor, record_id=record_id, decision=payload.decision, note=payload.note)
    return prior_records.record_view(rec)


@router.get(
    "/prior-records/{record_id}/files/{file_id}",
    response={**errors(*OBJ)},
    summary="既往病历附件（鉴权并审计）",
    openapi_extra={
        "responses": {
            200: {
                "description": "附件内容（Content-Type 为识别出的类型）",
                "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            }
        }
    },
)
def prior_record_file(request: HttpRequest, record_id: str, file_id: str) -> HttpResponse:
    data, content_type, _name = prior_records.file_fetch(user=_user(request), record_id=record_id, file_id=file_id)
    response = HttpResponse(data, content_type=content_type)
    response["Content-Disposition"] = "attachment" if content_type == "application/pdf" else "inline"
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


# --- the visit record ---------------------------------------------------------------


@router.get(
    "/visits/{visit_id}/record",
    response={200: ConsultRecordOut, **errors(HubCode.FORBIDDEN, *OBJ, ConsultCode.TRANSITION_REFUSED)},
    summary="问诊病历（接诊医生）",
)
def record_get(request: HttpRequest, visit_id: str) -> dict[str, Any]:
    doctor = require_roles(request, [Role.DOCTOR])
    return record.record_view(record.record_get(user=doctor, visit_id=visit_id))


@router.put(
    "/visits/{visit_id}/record",
    response={
        200: ConsultRecordOut,
        **errors(HubCode.FORBIDDEN, *OBJ, ConsultCode.TRANSITION_REFUSED, ConsultCode.RECORD_SIGNED),
    },
    summary="保存问诊病历（签名前）",
)
def record_put(request: HttpRequest, visit_id: str, payload: ConsultRecordIn) -> dict[str, Any]:
    doctor = require_roles(request, [Role.DOCTOR])
    data = record.RecordInput(**payload.dict())
    return record.record_view(record.record_put(user=doctor, visit_id=visit_id, data=data))


@router.post(
    "/visits/{visit_id}/record/sign",
    response={
        200: ConsultRecordOut,
        **errors(
            HubCode.FORBIDDEN,
            *OBJ,
            *CA_CODES,
            ConsultCode.TRANSITION_REFUSED,
            ConsultCode.RECORD_SIGNED,
            ConsultCode.RECORD_INCOMPLETE,
        ),
    },
    summary="医生电子签名问诊病历（CA）",
)
def record_sign(request: HttpRequest, visit_id: str, payload: ConsultRecordSignIn) -> dict[str, Any]:
    doctor = require_roles(request, [Role.DOCTOR])
    return record.record_view(record.record_sign(user=doctor, visit_id=visit_id, pin=payload.pin))


# --- third participants --------------------------------------------------------------


@router.post(
    "/visits/{visit_id}/invitations",
    response={201: ConsultInvitationOut, **errors(*OBJ, ConsultCode.TRANSITION_REFUSED)},
    summary="邀请第三方（家属、翻译、会诊医生）加入问诊",
)
def invitation_create(request: HttpRequest, visit_id: str, payload: ConsultInviteIn) -> Status[dict[str, Any]]:
    made = invitations.invite(user=_user(request), visit_id=visit_id, role=payload.role, invitee_id=payload.invitee_id)
    inv = made.invitation
    return Status(
        201,
        {
            "id": inv.pk,
            "code": made.code,
            "role": inv.role,
            "role_label": inv.get_role_display(),
            "expires_at": inv.expires_at,
        },
    )


@router.post(
    "/invitations/redeem",
    response={
        200: ConsultVisitOut,
        **errors(
            *OBJ,
            ConsultCode.INVITATION_INVALID,
            ConsultCode.INVITATION_EXPIRED,
            ConsultCode.INVITATION_USED,
            ConsultCode.INVITATION_THROTTLED,
            ConsultCode.TRANSITION_REFUSED,
        ),
    },
    summary="使用邀请码加入问诊",
)
def invitation_redeem(request: HttpRequest, payload: ConsultRedeemIn) -> dict[str, Any]:
    user = _user(request)
    visit = invitations.redeem(user=user, code=payload.code)
    return visit_row(visits_qs().get(pk=visit.pk), viewer=user)


@router.delete(
    "/visits/{visit_id}/participants/{user_id}",
    response={204: None, **errors(*OBJ, ImCode.NOT_MEMBER)},
    summary="移出第三方参与人（立即失去会话与视频权限）",
)
def participant_remove(request: HttpRequest, visit_id: str, user_id: int) -> Status[None]:
    invitations.remove(user=_user(request), visit_id=visit_id, participant_id=user_id)
    return Status(204, None)


@router.get(
    "/visits/{visit_id}/participants",
    response={200: list[ConsultParticipantOut], **errors(*OBJ)},
    summary="第三方参与人",
)
def participant_list(request: HttpRequest, visit_id: str) -> list[dict[str, Any]]:
    return invitations.participants(user=_user(request), visit_id=visit_id)


# --- after the visit --------------------------------------------------------------------


@router.get(
    "/visits/{visit_id}/summary",
    response={200: ConsultSummaryOut, **errors(*OBJ)},
    summary="问诊小结（诊断、建议、处方与订单）",
)
def visit_summary(request: HttpRequest, visit_id: str) -> dict[str, Any]:
    return summary.summary(user=_user(request), visit_id=visit_id)


@router.post(
    "/visits/{visit_id}/rating",
    response={201: ConsultRatingOut, **errors(*OBJ, ConsultCode.NOT_ENDED, ConsultCode.ALREADY_RATED)},
    summary="评价本次问诊",
)
def visit_rate(request: HttpRequest, visit_id: str, payload: ConsultRatingIn) -> Status[dict[str, Any]]:
    r = rating.rate(
        user=_user(request), visit_id=visit_id, stars=payload.stars, tags=payload.tags, comment=payload.comment
    )
    return Status(201, {"stars": r.stars, "tags": r.tags})
