"""/api/v1/psych/: scales, assignments, answers, reports, alerts, duty roster.

Every object is checked against the caller (selectors.*_visible): a patient
reaches only their own 就诊人's records, a doctor only their patients'; any
other id answers 404, audited."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.utils import timezone
from ninja import Query, Router, Status

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.audit.services import audit_record
from apps.core.lifecycle import allowed_actions
from hub.auth import require_roles
from hub.errors import HubCode, Invalid, NotFound, errors
from hub.pagination import PageParams, page

from . import selectors, services
from .errors import PsychCode
from .models import Alert, Assignment, DutyShift
from .schemas import (
    AlertDetailOut,
    AlertListOut,
    AnswersIn,
    AssignIn,
    AssignmentFillingOut,
    AssignmentListOut,
    AssignmentOut,
    AssignmentsCreatedOut,
    DutyIn,
    DutyListOut,
    DutyOut,
    NoteIn,
    PatientListOut,
    ReportOut,
    ReviewOut,
    ScaleListOut,
    ScaleOut,
    SubmitIn,
)
from .states import ALERT_TRANSITIONS, ASSIGNMENT_TRANSITIONS

router = Router()

# Which role performs which action; the tables in states.py say when. Only the
# sweep escalates an alert, so no client is offered "escalate".
ASSIGNMENT_ACTIONS_BY_ROLE: dict[str, tuple[str, ...]] = {Role.PATIENT: ("answer", "submit"), Role.DOCTOR: ("cancel",)}
ALERT_ACTIONS = ("acknowledge", "close")


def _assignment_out(user: User, row: dict[str, Any]) -> dict[str, Any]:
    among = ASSIGNMENT_ACTIONS_BY_ROLE.get(user.role, ())
    if user.role == Role.PATIENT:
        # The instruction to the clinician is not the patient's to read.
        row = {**row, "critical": [{**c, "action": ""} for c in row["critical"]]}
    return {**row, "allowed_actions": allowed_actions(ASSIGNMENT_TRANSITIONS, row["status"], among=among)}


def _alert_out(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "allowed_actions": allowed_actions(ALERT_TRANSITIONS, row["status"], among=ALERT_ACTIONS)}


def _user(request: HttpRequest) -> User:
    return request.auth  # type: ignore[attr-defined]


# --- scales ----------------------------------------------------------------------------


@router.get("/scales", response={200: ScaleListOut, **errors()}, summary="可用量表（每个量表的最新版本）")
def scale_list(request: HttpRequest) -> dict[str, Any]:
    return {"items": [selectors.scale_brief(s) for s in selectors.latest_scales()]}


@router.get(
    "/scales/{code}", response={200: ScaleOut, **errors(HubCode.NOT_FOUND)}, summary="量表定义（题目、选项及分值）"
)
def scale_detail(request: HttpRequest, code: str) -> dict[str, Any]:
    scale = selectors.latest_scale(code)
    if scale is None:
        raise NotFound("量表")
    return selectors.scale_full(scale)


# --- doctor: patients and assignments ------------------------------------------------------


@router.get(
    "/patients",
    response={200: PatientListOut, **errors(HubCode.FORBIDDEN, HubCode.VALIDATION_ERROR)},
    summary="我的患者（医生）",
)
def my_patients(request: HttpRequest, params: Query[PageParams], q: str = "") -> dict[str, Any]:
    doctor = require_roles(request, [Role.DOCTOR])
    qs = selectors.doctor_patients(doctor).select_related("owner")
    if q:
        qs = qs.filter(name__icontains=q)
    return page(qs, params, lambda rows: [selectors.patient_brief(p) for p in rows])


@router.post(
    "/assignments",
    response={
        201: AssignmentsCreatedOut,
        **errors(
            HubCode.FORBIDDEN,
            HubCode.NOT_FOUND,
            PsychCode.DUE_INVALID,
            PsychCode.SCALE_UNKNOWN,
            HubCode.VALIDATION_ERROR,
        ),
    },
    summary="分配量表（医生）",
)
def assign(request: HttpRequest, payload: AssignIn) -> Status[dict[str, Any]]:
    doctor = require_roles(request, [Role.DOCTOR])
    if payload.due_at is not None:
        due = payload.due_at if timezone.is_aware(payload.due_at) else timezone.make_aware(payload.due_at)
    elif payload.due_date is not None:
        due = services.due_from_date(payload.due_date)
    else:
        raise Invalid("请选择截止日期")
    created = services.assignments_create(
        doctor=doctor, patient_id=payload.patient_id, scale_codes=payload.scale_codes, due_at=due, note=payload.note
    )
    return Status(201, {"items": [_assignment_out(doctor, selectors.assignment_row(a)) for a in created]})


@router.get(
    "/assignments",
    response={200: AssignmentListOut, **errors(HubCode.FORBIDDEN, HubCode.VALIDATION_ERROR)},
    summary="量表任务列表（患者：本人及家庭成员；医生：我的患者）",
)
def assignment_list(
    request: HttpRequest, params: Query[PageParams], patient_id: int | None = None, status: str = ""
) -> dict[str, Any]:
    user = require_roles(request, [Role.PATIENT, Role.DOCTOR])
    if status and status not in Assignment.Status.values:
        raise Invalid("状态无效")
    qs = selectors.assignments_query(user, patient_id=patient_id, status=status).select_related("result")
    return page(qs, params, lambda rows: [_assignment_out(user, selectors.assignment_row(a)) for a in rows])


@router.get(
    "/assignments/{assignment_id}",
    response={200: AssignmentFillingOut, **errors(HubCode.FORBIDDEN, HubCode.NOT_FOUND, HubCode.VALIDATION_ERROR)},
    summary="量表任务详情（患者填写用：题目与已保存答案）",
)
def assignment_detail(request: HttpRequest, assignment_id: int) -> dict[str, Any]:
    user = require_roles(request, [Role.PATIENT, Role.DOCTOR])
    a = selectors.assignment_visible(user, assignment_id)
    return _assignment_out(user, selectors.assignment_for_filling(a))


@router.post(
    "/assignments/{assignment_id}/answers",
    response={
        200: AssignmentFillingOut,
        **errors(
            HubCode.FORBIDDEN,
            HubCode.NOT_FOUND,
            PsychCode.ALREADY_SUBMITTED,
            PsychCode.ASSIGNMENT_CLOSED,
            PsychCode.TRANSITION_REFUSED,
            PsychCode.ANSWER_INVALID,
            HubCode.VALIDATION_ERROR,
        ),
    },
    summary="保存答案（可多次，提交前可修改）",
)
def answers_save(request: HttpRequest, assignment_id: int, payload: AnswersIn) -> dict[str, Any]:
    user = require_roles(request, [Role.PATIENT])
    return _assignment_out(user, services.answers_save(user=user, assignment_id=assignment_id, answers=payload.answers))


@router.post(
    "/assignments/{assignment_id}/submit",
    response={
        200: ReportOut,
        **errors(
            HubCode.FORBIDDEN,
            HubCode.NOT_FOUND,
            PsychCode.ALREADY_SUBMITTED,
            PsychCode.ASSIGNMENT_CLOSED,
            PsychCode.TRANSITION_REFUSED,
            PsychCode.ANSWER_INVALID,
            PsychCode.INCOMPLETE,
            HubCode.VALIDATION_ERROR,
        ),
    },
    exclude_unset=True,
    summary="提交并计分（提交后答案不可更改）",
)
def submit(request: HttpRequest, assignment_id: int, payload: SubmitIn) -> dict[str, Any]:
    user = require_roles(request, [Role.PATIENT])
    result = services.assignment_submit(user=user, assignment_id=assignment_id, answers=payload.answers)
    return {**selectors.patient_report(result), "kind": "patient"}


@router.post(
    "/assignments/{assignment_id}/cancel",
    response={
        200: AssignmentOut,
        **errors(HubCode.FORBIDDEN, HubCode.NOT_FOUND, PsychCode.TRANSITION_REFUSED, HubCode.VALIDATION_ERROR),
    },
    summary="取消量表任务（医生）",
)
def cancel(request: HttpRequest, assignment_id: int) -> dict[str, Any]:
    doctor = require_roles(request, [Role.DOCTOR])
    return _assignment_out(
        doctor, selectors.assignment_row(services.assignment_cancel(doctor=doctor, assignment_id=assignment_id))
    )


# --- reports -----------------------------------------------------------------------------------


def _report(user: User, result_id: int) -> dict[str, Any]:
    result = selectors.result_visible(user, result_id)
    if user.role == Role.DOCTOR:
        report = selectors.clinical_report(result)
        report["kind"] = "clinical"
    else:
        report = selectors.patient_report(result)
        report["kind"] = "patient"
    audit_record(action="psych.report_view", actor=user, object_type="psych_result", object_id=result.pk)
    return report


@router.get(
    "/results/{result_id}",
    response={200: ReportOut, **errors(HubCode.FORBIDDEN, HubCode.NOT_FOUND, HubCode.VALIDATION_ERROR)},
    exclude_unset=True,
    summary="测评报告（患者：通俗版；医生：临床版，含逐题作答和趋势）",
)
def result_report(request: HttpRequest, result_id: int) -> dict[str, Any]:
    user = require_roles(request, [Role.PATIENT, Role.DOCTOR])
    return _report(user, result_id)


@router.get(
    "/results/{result_id}/print",
    response={**errors(HubCode.FORBIDDEN, HubCode.NOT_FOUND, HubCode.VALIDATION_ERROR)},
    summary="可打印报告（HTML）",
    openapi_extra={
        "responses": {
            200: {"description": "可打印的 HTML 报告", "content": {"text/html": {"schema": {"type": "string"}}}}
        }
    },
)
def result_print(request: HttpRequest, result_id: int) -> HttpResponse:
    user = require_roles(request, [Role.PATIENT, Role.DOCTOR])
    report = _report(user, result_id)
    audit_record(action="psych.report_print", actor=user, object_type="psych_result", object_id=result_id)
    html = render_to_string(
        "psych/report_print.html",
        {"r": report, "printed_at": timezone.localtime(), "clinical": report["kind"] == "clinical"},
    )
    return HttpResponse(html, content_type="text/html; charset=utf-8")


@router.post(
    "/results/{result_id}/sign",
    response={
        201: ReviewOut,
        **errors(HubCode.FORBIDDEN, HubCode.NOT_FOUND, PsychCode.ALREADY_SIGNED, HubCode.VALIDATION_ERROR),
    },
    summary="医生填写意见并签名（签名后不可修改）",
)
def result_sign(request: HttpRequest, result_id: int, payload: NoteIn) -> Status[dict[str, Any]]:
    doctor = require_roles(request, [Role.DOCTOR])
    review = services.result_sign(doctor=doctor, result_id=result_id, note=payload.note)
    view = selectors.review_view(review.result)
    assert view is not None  # just signed
    return Status(201, view)


# --- alerts ----------------------------------------------------------------------------------


@router.get(
    "/alerts",
    response={200: AlertListOut, **errors(HubCode.FORBIDDEN, HubCode.VALIDATION_ERROR)},
    summary="危急预警（我负责的及升级给我的）",
)
def alert_list(request: HttpRequest, params: Query[PageParams], status: str = "") -> dict[str, Any]:
    doctor = require_roles(request, [Role.DOCTOR])
    if status and status != "active" and status not in Alert.Status.values:
        raise Invalid("状态无效")
    return page(
        selectors.alerts_query(doctor, status=status),
        params,
        lambda rows: [_alert_out(selectors.alert_row(a)) for a in rows],
    )


@router.get(
    "/alerts/{alert_id}",
    response={200: AlertDetailOut, **errors(HubCode.FORBIDDEN, HubCode.NOT_FOUND, HubCode.VALIDATION_ERROR)},
    summary="预警详情与处理记录",
)
def alert_detail(request: HttpRequest, alert_id: int) -> dict[str, Any]:
    doctor = require_roles(request, [Role.DOCTOR])
    return _alert_out(selectors.alert_detail(selectors.alert_visible(doctor, alert_id)))


@router.post(
    "/alerts/{alert_id}/acknowledge",
    response={
        200: AlertDetailOut,
        **errors(HubCode.FORBIDDEN, HubCode.NOT_FOUND, PsychCode.TRANSITION_REFUSED, HubCode.VALIDATION_ERROR),
    },
    summary="确认预警",
)
def alert_acknowledge(request: HttpRequest, alert_id: int, payload: NoteIn) -> dict[str, Any]:
    doctor = require_roles(request, [Role.DOCTOR])
    return _alert_out(
        selectors.alert_detail(services.alert_acknowledge(user=doctor, alert_id=alert_id, note=payload.note))
    )


@router.post(
    "/alerts/{alert_id}/close",
    response={
        200: AlertDetailOut,
        **errors(HubCode.FORBIDDEN, HubCode.NOT_FOUND, PsychCode.TRANSITION_REFUSED, HubCode.VALIDATION_ERROR),
    },
    summary="关闭预警（填写处理记录）",
)
def alert_close(request: HttpRequest, alert_id: int, payload: NoteIn) -> dict[str, Any]:
    doctor = require_roles(request, [Role.DOCTOR])
    return _alert_out(selectors.alert_detail(services.alert_close(user=doctor, alert_id=alert_id, note=payload.note)))


# --- duty roster ------------------------------------------------------------------------------


def _duty_row(s: DutyShift) -> dict[str, Any]:
    return {
        "id": s.pk,
        "department": s.department,
        "doctor": {"id": s.doctor_id, "name": s.doctor.display_name},
        "starts_at": s.starts_at,
        "ends_at": s.ends_at,
    }


@router.get("/duty", response={200: DutyListOut, **errors(HubCode.FORBIDDEN)}, summary="值班表（今后及当前班次）")
def duty_list(request: HttpRequest, department: str = "") -> dict[str, Any]:
    require_roles(request, [Role.DOCTOR, Role.SYSADMIN])
    qs = DutyShift.objects.select_related("doctor").filter(ends_at__gt=timezone.now()).order_by("starts_at")
    if department:
        qs = qs.filter(department=department)
    return {"items": [_duty_row(s) for s in qs[:200]]}


@router.post(
    "/duty",
    response={
        201: DutyOut,
        **errors(
            HubCode.FORBIDDEN, PsychCode.DUTY_DOCTOR_INVALID, PsychCode.DUTY_WINDOW_INVALID, HubCode.VALIDATION_ERROR
        ),
    },
    summary="新增值班（系统管理员）",
)
def duty_create(request: HttpRequest, payload: DutyIn) -> Status[dict[str, Any]]:
    admin = require_roles(request, [Role.SYSADMIN])
    shift = services.duty_shift_create(
        actor=admin,
        department=payload.department,
        doctor_id=payload.doctor_id,
        starts_at=payload.starts_at,
        ends_at=payload.ends_at,
    )
    return Status(201, _duty_row(shift))
