"""Reads of consultations: who may see which visit, the rows the API returns.

A visit is seen by its booking account, its doctor, and the doctors of its
department while it waits in the department queue; any other id answers 404."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db.models import Count, Min, Q, QuerySet, Sum
from django.utils import timezone

from apps.accounts.models import Patient, StaffProfile, User
from apps.accounts.roles import Role
from apps.commerce.models import Refund
from apps.core.lifecycle import allowed_actions
from apps.timed.models import TimedSession
from apps.timed.selectors import session_out
from hub.errors import NotFound

from .errors import ConsultCode, ConsultError
from .models import Department, DoctorProfile, Invitation, PriorRecord, Rating, Slot, Visit, VisitKind, VisitRecord
from .states import DOCTOR_ACTIONS, OPEN, PATIENT_ACTIONS, VISIT_TRANSITIONS


def qualified(profile: DoctorProfile) -> bool:
    """R5: a licence number and at least CONSULT_MIN_PRACTICE_YEARS years of practice."""
    staff = StaffProfile.objects.filter(user_id=profile.user_id).first()
    return bool(
        staff
        and staff.licence_no.strip()
        and staff.years_of_practice >= settings.CONSULT_MIN_PRACTICE_YEARS
        and profile.user.is_active
        and profile.user.role == Role.DOCTOR
    )


def profile_of(user: User) -> DoctorProfile | None:
    if user.role != Role.DOCTOR:
        return None
    return DoctorProfile.objects.select_related("department", "user").filter(user=user).first()


def price_of(doctor: DoctorProfile | None, kind: str) -> int:
    """The price of a visit of ``kind``: the doctor's, or the department queue's (fen)."""
    if doctor is None:
        return int(
            settings.CONSULT_QUEUE_PRICE_VIDEO_FEN if kind == VisitKind.VIDEO else settings.CONSULT_QUEUE_PRICE_TEXT_FEN
        )
    return int(doctor.price_video_fen if kind == VisitKind.VIDEO else doctor.price_text_fen)


def age_on(birth: dt.date, today: dt.date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def today() -> dt.date:
    return timezone.localdate()


def mask_name(name: str) -> str:
    if len(name) <= 1:
        return name
    return name[0] + "*" * (len(name) - 1) if len(name) == 2 else name[0] + "*" * (len(name) - 2) + name[-1]


# --- browse -----------------------------------------------------------------------------------


def listed_doctors() -> QuerySet[DoctorProfile]:
    """Doctors patients may see and book (R5: licensed, enough years)."""
    return (
        DoctorProfile.objects.select_related("department", "user", "user__staff_profile")
        .filter(is_listed=True, department__is_active=True, user__is_active=True, user__role=Role.DOCTOR)
        .filter(user__staff_profile__years_of_practice__gte=settings.CONSULT_MIN_PRACTICE_YEARS)
        .exclude(user__staff_profile__licence_no="")
    )


def department_row(d: Department, *, doctor_count: int, waiting: int) -> dict[str, Any]:
    return {
        "code": d.code,
        "name": d.name,
        "intro": d.intro,
        "doctor_count": doctor_count,
        "queue_enabled": d.queue_enabled,
        "queue_waiting": waiting,
    }


def departments() -> list[dict[str, Any]]:
    counts = dict(listed_doctors().values_list("department_id").annotate(n=Count("id")).order_by())
    waiting = dict(
        Visit.objects.filter(status=Visit.Status.WAITING, doctor__isnull=True)
        .values_list("department_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    return [
        department_row(d, doctor_count=int(counts.get(d.pk, 0)), waiting=int(waiting.get(d.pk, 0)))
        for d in Department.objects.filter(is_active=True)
    ]


def doctor_row(p: DoctorProfile, *, next_slot_at: dt.datetime | None = None) -> dict[str, Any]:
    staff = getattr(p.user, "staff_profile", None)
    return {
        "id": p.pk,
        "name": p.user.display_name,
        "department": {"code": p.department.code, "name": p.department.name},
        "title": p.title,
        "title_label": DoctorProfile.Title(p.title).label if p.title in DoctorProfile.Title.values else p.title,
        "licence_no": staff.licence_no if staff else "",
        "years_of_practice": staff.years_of_practice if staff else 0,
        "practice_scope": p.practice_scope,
        "specialties": p.specialties,
        "intro": p.intro,
        "rating": round(p.rating_sum / p.rating_count, 1) if p.rating_count else None,
        "rating_count": p.rating_count,
        "price_text_fen": p.price_text_fen,
        "price_video_fen": p.price_video_fen,
        "is_online": p.is_online,
        "next_slot_at": next_slot_at,
    }


def next_slots(doctor_ids: list[int], *, kind: str = "") -> dict[int, dt.datetime]:
    from django.db.models import F

    qs = Slot.objects.filter(
        doctor_id__in=doctor_ids, status=Slot.Status.OPEN, starts_at__gt=timezone.now(), booked__lt=F("capacity")
    )
    if kind:
        qs = qs.filter(kind=kind)
    return dict(qs.values_list("doctor_id").annotate(first=Min("starts_at")).order_by())


def doctors(*, department: str = "", kind: str = "", q: str = "") -> list[dict[str, Any]]:
    qs = listed_doctors()
    if department:
        qs = qs.filter(department__code=department)
    if kind == VisitKind.VIDEO:
        qs = qs.filter(price_video_fen__gt=0)
    elif kind == VisitKind.TEXT:
        qs = qs.filter(price_text_fen__gt=0)
    if q:
        qs = qs.filter(Q(user__display_name__icontains=q) | Q(specialties__icontains=q) | Q(department__name=q))
    rows = list(qs[:200])
    first = next_slots([p.pk for p in rows], kind=kind)
    return [doctor_row(p, next_slot_at=first.get(p.pk)) for p in rows]


def listed_doctor(doctor_id: int) -> DoctorProfile:
    p = listed_doctors().filter(pk=doctor_id).first()
    if p is None:
        raise NotFound("医生")
    return p


def doctor_detail(doctor_id: int) -> dict[str, Any]:
    p = listed_doctor(doctor_id)
    row = doctor_row(p, next_slot_at=next_slots([p.pk]).get(p.pk))
    ratings = Rating.objects.filter(visit__doctor=p).order_by("-created_at")[:10]
    row["recent_ratings"] = [
        {
            "stars": r.stars,
            "tags": list(r.tags or []),
            "comment": (r.comment[:60] + "…") if len(r.comment) > 60 else r.comment,
            "created_at": r.created_at,
        }
        for r in ratings
    ]
    return row


def slot_row(s: Slot) -> dict[str, Any]:
    return {
        "id": s.pk,
        "kind": s.kind,
        "kind_label": VisitKind(s.kind).label,
        "starts_at": s.starts_at,
        "ends_at": s.ends_at,
        "capacity": s.capacity,
        "remaining": max(0, s.capacity - s.booked) if s.status == Slot.Status.OPEN else 0,
        "status": s.status,
    }


def slots(doctor_id: int, *, start: dt.date, days: int, kind: str = "") -> list[dict[str, Any]]:
    p = listed_doctor(doctor_id)
    tz = timezone.get_current_timezone()
    since = max(timezone.now(), dt.datetime.combine(start, dt.time.min, tzinfo=tz))
    until = dt.datetime.combine(start + dt.timedelta(days=days), dt.time.min, tzinfo=tz)
    qs = Slot.objects.filter(doctor=p, ends_at__gt=since, starts_at__lt=until)
    if kind:
        qs = qs.filter(kind=kind)
    return [slot_row(s) for s in qs.order_by("starts_at", "id")[:500]]


# --- visits -----------------------------------------------------------------------------------


def visits_qs() -> QuerySet[Visit]:
    return Visit.objects.select_related(
        "patient", "doctor__user__staff_profile", "doctor__department", "department", "slot", "prior_record"
    )


def visit_visible(user: User, public_id: str) -> Visit:
    """The visit as ``user`` may see it; the same 404 for every other id."""
    visit = visits_qs().filter(public_id=public_id).first()
    if visit is None or not may_see(user, visit):
        raise NotFound("问诊")
    return visit


def is_participant(user: User, visit: Visit) -> bool:
    """A third participant who joined through an invitation (and was not removed)."""
    return Invitation.objects.filter(visit=visit, invitee=user, status=Invitation.Status.JOINED).exists()


def may_see(user: User, visit: Visit) -> bool:
    if user.role == Role.PATIENT:
        return visit.account_id == user.pk or is_participant(user, visit)
    if user.role == Role.DOCTOR:
        if visit.doctor_id is not None:
            return bool(visit.doctor and visit.doctor.user_id == user.pk) or is_participant(user, visit)
        profile = profile_of(user)
        return bool(profile and profile.department_id == visit.department_id)
    return False


def visit_of_doctor(user: User, public_id: str) -> tuple[Visit, DoctorProfile]:
    """For a doctor's action: their own visit (404 for a visit they cannot see; a
    visit of another doctor answers ``consult.not_your_visit``)."""
    profile = profile_of(user)
    visit = visits_qs().filter(public_id=public_id).first()
    if visit is None or profile is None:
        raise NotFound("问诊")
    if visit.doctor_id is None and visit.department_id == profile.department_id:
        return visit, profile
    if visit.doctor_id != profile.pk:
        raise ConsultError(ConsultCode.NOT_YOUR_VISIT)
    return visit, profile


def visits_for(user: User, *, scope: str = "mine") -> QuerySet[Visit]:
    qs = visits_qs()
    if user.role == Role.PATIENT:
        qs = qs.filter(account=user)
    elif user.role == Role.DOCTOR:
        profile = profile_of(user)
        if profile is None:
            return qs.none()
        qs = qs.filter(
            Q(doctor=profile) | Q(doctor__isnull=True, department_id=profile.department_id, status=Visit.Status.WAITING)
        )
    else:
        return qs.none()
    if scope == "open":
        qs = qs.filter(status__in=list(OPEN))
    elif scope == "history":
        qs = qs.exclude(status__in=list(OPEN))
    return qs


def prior_row(r: PriorRecord | None) -> dict[str, Any] | None:
    if r is None:
        return None
    return {
        "id": r.public_id,
        "source": r.source,
        "source_label": PriorRecord.Source(r.source).label,
        "hospital": r.hospital,
        "visit_date": r.visit_date,
        "icd10_code": r.icd10_code,
        "diagnosis": r.diagnosis,
        "review": r.review,
        "review_label": PriorRecord.Review(r.review).label,
    }


def patient_brief(p: Patient, *, masked: bool) -> dict[str, Any]:
    return {
        "id": p.pk,
        "name": mask_name(p.name) if masked else p.name,
        "age": age_on(p.birth_date, today()),
        "sex_label": Patient.Sex(p.sex).label if p.sex in Patient.Sex.values else "",
    }


def refund_fen(order_no: str) -> int:
    """Money back on the visit's order: refunded, or on its way (a refund being processed)."""
    if not order_no:
        return 0
    live = [Refund.Status.REQUESTED, Refund.Status.APPROVED, Refund.Status.PROCESSING, Refund.Status.SUCCEEDED]
    total = Refund.objects.filter(order__order_no=order_no, status__in=live).aggregate(n=Sum("amount_fen"))["n"]
    return int(total or 0)


def actions_for(user: User | None, visit: Visit) -> list[str]:
    if user is None:
        return []
    among: tuple[str, ...] = ()
    if user.role == Role.PATIENT:
        among = PATIENT_ACTIONS
        if visit.status == Visit.Status.WAITING and visit.slot_id is None:
            among = ("cancel",)
    elif user.role == Role.DOCTOR:
        among = DOCTOR_ACTIONS
        if visit.doctor_id is None:
            among = ("take",)
        else:
            among = tuple(a for a in DOCTOR_ACTIONS if a != "take")
    return allowed_actions(VISIT_TRANSITIONS, visit.status, among=among)


def visit_row(visit: Visit, *, viewer: User | None, masked: bool = False) -> dict[str, Any]:
    from .queue import queue_info

    doctor = visit.doctor
    # A third participant (family, interpreter) sees the visit, not the patient's clinical text.
    guest = (
        viewer is not None
        and viewer.pk != visit.account_id
        and not (doctor and doctor.user_id == viewer.pk)
        and is_participant(viewer, visit)
    )
    return {
        "id": visit.public_id,
        "patient": patient_brief(visit.patient, masked=masked),
        "doctor": doctor_row(doctor) if doctor else None,
        "department": {"code": visit.department.code, "name": visit.department.name},
        "kind": visit.kind,
        "kind_label": VisitKind(visit.kind).label,
        "status": visit.status,
        "status_label": Visit.Status(visit.status).label,
        "allowed_actions": actions_for(viewer, visit),
        "price_fen": visit.price_fen,
        "order_no": visit.order_no,
        "slot": {"starts_at": visit.slot.starts_at, "ends_at": visit.slot.ends_at} if visit.slot else None,
        "chief_complaint": "" if guest else visit.chief_complaint,
        "prior_record": None if guest else prior_row(visit.prior_record),
        "guardian_name": visit.guardian_name,
        "queue": queue_info(visit),
        "conversation_id": visit.conversation_id,
        "room_id": f"conv-{visit.conversation_id}" if visit.conversation_id else None,
        "session": _session(visit),
        "record_signed": VisitRecord.objects.filter(visit=visit, signed_at__isnull=False).exists(),
        "rated": Rating.objects.filter(visit=visit).exists(),
        "reschedule_count": visit.reschedule_count,
        "created_at": visit.created_at,
        "accepted_at": visit.accepted_at,
        "called_at": visit.called_at,
        "ended_at": visit.ended_at,
        "end_reason": visit.end_reason,
        "end_reason_label": END_REASON_LABELS.get(visit.end_reason, ""),
        "terminate_reason_label": (
            Visit.TerminateReason(visit.terminate_reason).label if visit.terminate_reason else ""
        ),
        "refund_fen": refund_fen(visit.order_no),
        "step_up_at": visit.step_up_at,
    }


END_REASON_LABELS = {
    "doctor": "医生结束问诊",
    "deadline": "问诊时间已到",
    "terminated": "医生终止问诊",
    "patient": "患者取消",
    "unpaid": "超时未支付",
    "slot_closed": "医生停诊",
    "refunded": "订单已退款",
}


def _session(visit: Visit) -> dict[str, Any] | None:
    """The visit's timed session (deadline, remaining, extension) once called in."""
    if not visit.timed_session_id:
        return None
    session = TimedSession.objects.filter(pk=visit.timed_session_id).first()
    return session_out(session) if session is not None else None


def workbench(user: User) -> dict[str, Any]:
    profile = profile_of(user)
    if profile is None:
        raise NotFound("医生资料")
    start = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    mine = visits_qs().filter(doctor=profile)
    today_rows = mine.filter(Q(queued_at__gte=start) | Q(status__in=list(OPEN - {Visit.Status.PENDING_PAYMENT})))
    counts = dict(today_rows.values_list("status").annotate(n=Count("id")).order_by())
    from .queue import queue_of

    queue = [
        visit_row(v, viewer=user, masked=True)
        for v in (
            list(queue_of(doctor_id=profile.pk))
            + list(mine.filter(status=Visit.Status.ACCEPTED).order_by("accepted_at"))
            + list(queue_of(department_id=profile.department_id))
        )
    ]
    board_qs = today_rows.order_by("queued_at", "id")
    board: dict[str, list[dict[str, Any]]] = {"waiting": [], "in_visit": [], "done": []}
    for v in board_qs[:300]:
        column = (
            "waiting"
            if v.status in (Visit.Status.WAITING, Visit.Status.ACCEPTED)
            else "in_visit"
            if v.status == Visit.Status.IN_PROGRESS
            else "done"
            if v.status != Visit.Status.PENDING_PAYMENT
            else ""
        )
        if column:
            board[column].append(visit_row(v, viewer=user, masked=True))
    return {
        "today": {
            "waiting": int(counts.get(Visit.Status.WAITING, 0)),
            "accepted": int(counts.get(Visit.Status.ACCEPTED, 0)),
            "in_progress": int(counts.get(Visit.Status.IN_PROGRESS, 0)),
            "ended": int(counts.get(Visit.Status.ENDED, 0)),
        },
        "queue": queue,
        "board": board,
        "is_online": profile.is_online,
        # The live topics the workstation subscribes to: consult_queue:<doctor_id>, consult_dept:<code>.
        "doctor_id": profile.pk,
        "departments": [profile.department.code],
    }
