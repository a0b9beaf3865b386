"""/api/v1/consultations/ (booking side): browse, book, cancel, reschedule, the
doctor's workbench, going online, taking, step-up, accepting, terminating,
calling in and ending a visit (docs/consultations-api.md).

Every visit is checked against the caller (``selectors.visit_visible`` /
``visit_of_doctor``): any other id answers the same 404; a doctor acting on
another doctor's visit gets ``consult.not_your_visit``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from ninja import Router, Status

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.commerce.errors import CommerceCode
from apps.timed.errors import TimedCode
from hub.auth import require_roles
from hub.errors import HubCode, Invalid, errors

from . import schedule, selectors, services
from .errors import ConsultCode
from .models import Visit, VisitKind
from .schemas import (
    ConsultAcceptIn,
    ConsultBookIn,
    ConsultDepartmentOut,
    ConsultDoctorDetailOut,
    ConsultDoctorOut,
    ConsultOnlineIn,
    ConsultOnlineOut,
    ConsultRescheduleIn,
    ConsultSlotOut,
    ConsultStepUpIn,
    ConsultStepUpOut,
    ConsultTerminateIn,
    ConsultVisitOut,
    ConsultWorkbenchOut,
)
from .schemas_schedule import (
    ConsultMySlotOut,
    ConsultSlotBatchIn,
    ConsultSlotBatchOut,
    ConsultSlotCreateIn,
    ConsultSlotPatchIn,
)

router = Router()

OBJ = (HubCode.FORBIDDEN, HubCode.NOT_FOUND)
DOCTOR_OBJ = (*OBJ, ConsultCode.NOT_YOUR_VISIT, ConsultCode.TRANSITION_REFUSED)
ANY_SIGNED_IN = [r.value for r in Role]
# A doctor manages their own schedule; a sysadmin any doctor's (``doctor_id``).
SCHEDULERS = [Role.DOCTOR, Role.SYSADMIN]


def _out(user: User, visit: Visit) -> dict[str, Any]:
    fresh = selectors.visits_qs().get(pk=visit.pk)
    return selectors.visit_row(fresh, viewer=user)


def _kind(kind: str) -> str:
    if kind and kind not in VisitKind.values:
        raise Invalid("问诊方式无效", field="kind")
    return kind


# --- browse --------------------------------------------------------------------------------------


@router.get("/departments", response={200: list[ConsultDepartmentOut], **errors()}, summary="科室列表")
def departments(request: HttpRequest) -> list[dict[str, Any]]:
    require_roles(request, ANY_SIGNED_IN)
    return selectors.departments()


@router.get("/doctors", response={200: list[ConsultDoctorOut], **errors()}, summary="找医生（执业资质公示）")
def doctors(request: HttpRequest, department: str = "", kind: str = "", q: str = "") -> list[dict[str, Any]]:
    require_roles(request, ANY_SIGNED_IN)
    return selectors.doctors(department=department[:32], kind=_kind(kind), q=q.strip()[:32])


@router.get(
    "/doctors/{doctor_id}",
    response={200: ConsultDoctorDetailOut, **errors(HubCode.NOT_FOUND)},
    summary="医生主页",
)
def doctor_detail(request: HttpRequest, doctor_id: int) -> dict[str, Any]:
    require_roles(request, ANY_SIGNED_IN)
    return selectors.doctor_detail(doctor_id)


@router.get(
    "/doctors/{doctor_id}/slots",
    response={200: list[ConsultSlotOut], **errors(HubCode.NOT_FOUND)},
    summary="医生号源（剩余名额）",
)
def doctor_slots(request: HttpRequest, doctor_id: int, kind: str = "", days: int = 7) -> list[dict[str, Any]]:
    # ``from`` (YYYY-MM-DD, default today) is read from the query string (a Python keyword).
    require_roles(request, ANY_SIGNED_IN)
    raw = request.GET.get("from", "")
    try:
        start = dt.date.fromisoformat(raw) if raw else selectors.today()
    except ValueError:
        raise Invalid("日期格式应为 YYYY-MM-DD", field="from") from None
    if not (1 <= days <= 31):
        raise Invalid("天数须在1到31之间", field="days")
    return selectors.slots(doctor_id, start=start, days=days, kind=_kind(kind))


# --- the patient ----------------------------------------------------------------------------------

BOOK_CODES = (
    ConsultCode.SLOT_FULL,
    ConsultCode.SLOT_CLOSED,
    ConsultCode.NO_PRIOR_RECORD,
    ConsultCode.GUARDIAN_REQUIRED,
    ConsultCode.KIND_NOT_OFFERED,
    ConsultCode.DOCTOR_NOT_QUALIFIED,
    ConsultCode.DOCTOR_UNAVAILABLE,
    ConsultCode.DUPLICATE_OPEN_VISIT,
    CommerceCode.CHANNEL_UNAVAILABLE,
    CommerceCode.ITEM_REFUSED,
)


@router.post(
    "/visits",
    response={201: ConsultVisitOut, **errors(*OBJ, *BOOK_CODES)},
    summary="预约问诊（医生号源或科室排队）并下单",
)
def visit_book(request: HttpRequest, body: ConsultBookIn) -> Status[dict[str, Any]]:
    user = require_roles(request, [Role.PATIENT])
    visit = services.visit_book(
        account=user,
        data=services.BookingInput(
            patient_id=body.patient_id,
            kind=body.kind,
            chief_complaint=body.chief_complaint,
            prior_record_id=body.prior_record_id,
            doctor_id=body.doctor_id,
            department=body.department,
            slot_id=body.slot_id,
            guardian_name=body.guardian_name,
            guardian_relation=body.guardian_relation,
            guardian_phone=body.guardian_phone,
            channel=body.channel,
        ),
    )
    return Status(201, _out(user, visit))


@router.get("/visits", response={200: list[ConsultVisitOut], **errors(HubCode.FORBIDDEN)}, summary="我的问诊")
def visits(request: HttpRequest, scope: str = "mine") -> list[dict[str, Any]]:
    user = require_roles(request, [Role.PATIENT, Role.DOCTOR])
    if scope not in ("mine", "open", "history"):
        raise Invalid("范围无效", field="scope")
    masked = user.role != Role.PATIENT
    return [selectors.visit_row(v, viewer=user, masked=masked) for v in selectors.visits_for(user, scope=scope)[:200]]


@router.get("/visits/{visit_id}", response={200: ConsultVisitOut, **errors(*OBJ)}, summary="问诊详情")
def visit_detail(request: HttpRequest, visit_id: str) -> dict[str, Any]:
    user = require_roles(request, [Role.PATIENT, Role.DOCTOR])
    return selectors.visit_row(selectors.visit_visible(user, visit_id), viewer=user)


@router.post(
    "/visits/{visit_id}/cancel",
    response={200: ConsultVisitOut, **errors(*OBJ, ConsultCode.CANCEL_TOO_LATE, ConsultCode.TRANSITION_REFUSED)},
    summary="取消问诊（医生接诊前全额退款）",
)
def visit_cancel(request: HttpRequest, visit_id: str) -> dict[str, Any]:
    user = require_roles(request, [Role.PATIENT])
    return _out(user, services.visit_cancel(account=user, public_id=visit_id))


@router.post(
    "/visits/{visit_id}/reschedule",
    response={
        200: ConsultVisitOut,
        **errors(
            *OBJ,
            ConsultCode.SLOT_FULL,
            ConsultCode.SLOT_CLOSED,
            ConsultCode.RESCHEDULE_LIMIT,
            ConsultCode.TRANSITION_REFUSED,
        ),
    },
    summary="改约到同一医生的其他时段",
)
def visit_reschedule(request: HttpRequest, visit_id: str, body: ConsultRescheduleIn) -> dict[str, Any]:
    user = require_roles(request, [Role.PATIENT])
    return _out(user, services.visit_reschedule(account=user, public_id=visit_id, slot_id=body.slot_id))


# --- the doctor -----------------------------------------------------------------------------------


@router.get("/workbench", response={200: ConsultWorkbenchOut, **errors(*OBJ)}, summary="医生工作台：今日队列与看板")
def workbench(request: HttpRequest) -> dict[str, Any]:
    user = require_roles(request, [Role.DOCTOR])
    return selectors.workbench(user)


@router.post(
    "/me/online",
    response={200: ConsultOnlineOut, **errors(*OBJ, ConsultCode.DOCTOR_NOT_QUALIFIED)},
    summary="医生上线 / 下线",
)
def me_online(request: HttpRequest, body: ConsultOnlineIn) -> dict[str, Any]:
    user = require_roles(request, [Role.DOCTOR])
    return {"is_online": services.doctor_set_online(doctor=user, online=body.online).is_online}


@router.post(
    "/slots/{slot_id}/close",
    response={200: ConsultMySlotOut, **errors(*OBJ)},
    summary="医生停诊该时段（已约患者全额退款并通知）",
)
def slot_close(request: HttpRequest, slot_id: int) -> dict[str, Any]:
    user = require_roles(request, SCHEDULERS)
    return schedule.my_slot_row(services.slot_close(doctor=user, slot_id=slot_id))


# --- the doctor's schedule (schedule.py) ------------------------------------------------------------

PERIOD_CODES = (
    ConsultCode.DOCTOR_NOT_QUALIFIED,
    ConsultCode.KIND_NOT_OFFERED,
    ConsultCode.SLOT_IN_PAST,
    ConsultCode.SLOT_ENDS_BEFORE_START,
    ConsultCode.SLOT_TOO_LONG,
    ConsultCode.SLOT_OVERLAP,
    HubCode.VALIDATION_ERROR,
)


@router.get(
    "/me/slots",
    response={200: list[ConsultMySlotOut], **errors(*OBJ, HubCode.VALIDATION_ERROR)},
    summary="我的排班（含已约人数与状态）",
)
def my_slots(request: HttpRequest, days: int = 7, doctor_id: int | None = None) -> list[dict[str, Any]]:
    # ``from`` (YYYY-MM-DD in Beijing time, default today) is read from the query string;
    # ``doctor_id`` is a sysadmin's (a doctor always gets their own).
    user = require_roles(request, SCHEDULERS)
    raw = request.GET.get("from", "")
    try:
        start = dt.date.fromisoformat(raw) if raw else selectors.today()
    except ValueError:
        raise Invalid("日期格式应为 YYYY-MM-DD", field="from") from None
    slots = schedule.my_slots(doctor=user, start=start, days=days, doctor_id=doctor_id)
    return [schedule.my_slot_row(s) for s in slots]


@router.post(
    "/me/slots",
    response={201: ConsultMySlotOut, **errors(*OBJ, *PERIOD_CODES)},
    summary="新增一个号源时段",
)
def my_slot_create(
    request: HttpRequest, body: ConsultSlotCreateIn, doctor_id: int | None = None
) -> Status[dict[str, Any]]:
    user = require_roles(request, SCHEDULERS)
    data = schedule.SlotInput(kind=body.kind, starts_at=body.starts_at, ends_at=body.ends_at, capacity=body.capacity)
    return Status(201, schedule.my_slot_row(schedule.slot_create(doctor=user, data=data, doctor_id=doctor_id)))


@router.post(
    "/me/slots/batch",
    response={201: ConsultSlotBatchOut, **errors(*OBJ, *PERIOD_CODES)},
    summary="按周模板批量新增号源（全部成功或全部不建）",
)
def my_slots_batch(
    request: HttpRequest, body: ConsultSlotBatchIn, doctor_id: int | None = None
) -> Status[dict[str, Any]]:
    user = require_roles(request, SCHEDULERS)
    template = schedule.WeekTemplate(
        kind=body.kind,
        weekdays=body.weekdays,
        start_time=body.start_time,
        end_time=body.end_time,
        capacity=body.capacity,
        from_date=body.from_date,
        weeks=body.weeks,
    )
    slots = schedule.slots_batch_create(doctor=user, template=template, doctor_id=doctor_id)
    return Status(201, {"created": len(slots), "slots": [schedule.my_slot_row(s) for s in slots]})


@router.patch(
    "/slots/{slot_id}",
    response={
        200: ConsultMySlotOut,
        **errors(*OBJ, ConsultCode.CAPACITY_BELOW_BOOKED, ConsultCode.SLOT_CLOSED, HubCode.VALIDATION_ERROR),
    },
    summary="修改号源名额（不少于已约人数）",
)
def slot_patch(request: HttpRequest, slot_id: int, body: ConsultSlotPatchIn) -> dict[str, Any]:
    user = require_roles(request, SCHEDULERS)
    return schedule.my_slot_row(schedule.slot_set_capacity(doctor=user, slot_id=slot_id, capacity=body.capacity))


@router.post(
    "/visits/{visit_id}/take",
    response={
        200: ConsultVisitOut,
        **errors(
            *DOCTOR_OBJ, ConsultCode.DOCTOR_NOT_QUALIFIED, ConsultCode.DOCTOR_UNAVAILABLE, ConsultCode.KIND_NOT_OFFERED
        ),
    },
    summary="从科室队列领取问诊",
)
def visit_take(request: HttpRequest, visit_id: str) -> dict[str, Any]:
    user = require_roles(request, [Role.DOCTOR])
    return _out(user, services.visit_take(doctor=user, public_id=visit_id))


@router.post(
    "/visits/{visit_id}/step-up",
    response={
        200: ConsultStepUpOut,
        **errors(*DOCTOR_OBJ, ConsultCode.STEP_UP_FAILED, ConsultCode.STEP_UP_LOCKED),
    },
    summary="接诊前再次验证身份（密码或动态验证码）",
)
def visit_step_up(request: HttpRequest, visit_id: str, body: ConsultStepUpIn) -> dict[str, Any]:
    user = require_roles(request, [Role.DOCTOR])
    secret = body.password if body.method == Visit.StepUpMethod.PASSWORD else body.code
    visit = services.visit_step_up(doctor=user, public_id=visit_id, method=body.method, secret=secret)
    return {"step_up_at": visit.step_up_at, "valid_until": services.step_up_valid_until(visit)}


@router.post(
    "/visits/{visit_id}/accept",
    response={
        200: ConsultVisitOut,
        **errors(
            *DOCTOR_OBJ,
            ConsultCode.STEP_UP_REQUIRED,
            ConsultCode.FOLLOWUP_NOT_CONFIRMED,
            ConsultCode.NO_PRIOR_RECORD,
            ConsultCode.PRIOR_RECORD_UNREVIEWED,
        ),
    },
    summary="确认复诊并接诊",
)
def visit_accept(request: HttpRequest, visit_id: str, body: ConsultAcceptIn) -> dict[str, Any]:
    user = require_roles(request, [Role.DOCTOR])
    return _out(user, services.visit_accept(doctor=user, public_id=visit_id, confirm_followup=body.confirm_followup))


@router.post(
    "/visits/{visit_id}/terminate",
    response={200: ConsultVisitOut, **errors(*DOCTOR_OBJ)},
    summary="终止问诊（全额退款，建议线下就诊）",
)
def visit_terminate(request: HttpRequest, visit_id: str, body: ConsultTerminateIn) -> dict[str, Any]:
    user = require_roles(request, [Role.DOCTOR])
    return _out(user, services.visit_terminate(doctor=user, public_id=visit_id, reason=body.reason, note=body.note))


@router.post(
    "/visits/{visit_id}/call", response={200: ConsultVisitOut, **errors(*DOCTOR_OBJ)}, summary="叫号（进入问诊）"
)
def visit_call(request: HttpRequest, visit_id: str) -> dict[str, Any]:
    user = require_roles(request, [Role.DOCTOR])
    return _out(user, services.visit_call(doctor=user, public_id=visit_id))


@router.post("/visits/{visit_id}/end", response={200: ConsultVisitOut, **errors(*DOCTOR_OBJ)}, summary="结束问诊")
def visit_end(request: HttpRequest, visit_id: str) -> dict[str, Any]:
    user = require_roles(request, [Role.DOCTOR])
    return _out(user, services.doctor_end(doctor=user, public_id=visit_id))


@router.post(
    "/visits/{visit_id}/extend",
    response={
        200: ConsultVisitOut,
        **errors(
            *DOCTOR_OBJ, ConsultCode.EXTENSION_USED, TimedCode.EXTENSION_NOT_ALLOWED, TimedCode.TRANSITION_REFUSED
        ),
    },
    summary="延长问诊一次（按次计费）",
    description="每次问诊只能延长一次，延长时长见设置；为患者生成一笔延时费订单。",
)
def visit_extend(request: HttpRequest, visit_id: str) -> dict[str, Any]:
    user = require_roles(request, [Role.DOCTOR])
    return _out(user, services.visit_extend(doctor=user, public_id=visit_id))
