"""The doctor's schedule (号源管理, issue 13): list, add one slot, add a week template,
change a slot's capacity; closing a slot is ``services.slot_close`` (its visits are
cancelled and refunded).

Rules: R5 (an unqualified doctor cannot publish slots); a slot starts in the
future, ends after it starts, lasts at most ``MAX_SLOT_HOURS`` and holds 1 to
``MAX_CAPACITY`` places; it may not overlap another open slot of the same doctor
and kind. A week template is all-or-nothing: one conflict (an overlap, a time
already past) and nothing is written, the conflicts listed in the error's detail.
Writes run under the doctor profile's row lock, so two concurrent requests cannot
both pass the overlap check. Every write is audited."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.accounts.roles import Role
from apps.audit.services import audit_record
from hub.errors import Invalid, NotFound

from . import selectors
from .errors import ConsultCode, ConsultError
from .models import DoctorProfile, Slot, VisitKind

MAX_SLOT_HOURS = 4
MAX_CAPACITY = 50
MAX_WEEKS = 4
MAX_DAYS = 31
BEIJING = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class SlotInput:
    kind: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    capacity: int


@dataclass(frozen=True)
class WeekTemplate:
    kind: str
    weekdays: list[int]  # 1 = Monday ... 7 = Sunday
    start_time: dt.time  # Beijing time
    end_time: dt.time
    capacity: int
    from_date: dt.date
    weeks: int


def own_profile(actor: User, doctor_id: int | None = None) -> DoctorProfile:
    """Whose schedule: a doctor's own (``doctor_id`` ignored); a sysadmin's, the doctor
    ``doctor_id`` names. Anyone else, or an unknown doctor: 404."""
    if actor.role == Role.SYSADMIN and doctor_id is not None:
        profile = DoctorProfile.objects.select_related("department", "user").filter(pk=doctor_id).first()
    else:
        profile = selectors.profile_of(actor)
    if profile is None:
        raise NotFound("医生资料")
    return profile


def _publishable(profile: DoctorProfile) -> None:
    if not selectors.qualified(profile):  # R5
        raise ConsultError(ConsultCode.DOCTOR_NOT_QUALIFIED)


def _check_kind_capacity(kind: str, capacity: int, profile: DoctorProfile) -> None:
    if kind not in VisitKind.values:
        raise Invalid("问诊方式无效", field="kind")
    if selectors.price_of(profile, kind) <= 0:  # no price set: patients could not book it
        raise ConsultError(ConsultCode.KIND_NOT_OFFERED, field="kind")
    if not (1 <= capacity <= MAX_CAPACITY):
        raise Invalid(f"名额须在1到{MAX_CAPACITY}之间", field="capacity")


def _check_period(starts_at: dt.datetime, ends_at: dt.datetime, now: dt.datetime) -> None:
    if ends_at <= starts_at:
        raise ConsultError(ConsultCode.SLOT_ENDS_BEFORE_START, field="ends_at")
    if ends_at - starts_at > dt.timedelta(hours=MAX_SLOT_HOURS):
        raise ConsultError(ConsultCode.SLOT_TOO_LONG, hours=MAX_SLOT_HOURS, field="ends_at")
    if starts_at <= now:
        raise ConsultError(ConsultCode.SLOT_IN_PAST, field="starts_at")


def _overlapping(profile: DoctorProfile, kind: str, starts_at: dt.datetime, ends_at: dt.datetime) -> Slot | None:
    return (
        Slot.objects.filter(
            doctor=profile, kind=kind, status=Slot.Status.OPEN, starts_at__lt=ends_at, ends_at__gt=starts_at
        )
        .order_by("starts_at")
        .first()
    )


def _conflict(starts_at: dt.datetime, ends_at: dt.datetime, other: Slot) -> dict[str, Any]:
    return {
        "starts_at": starts_at.isoformat(),
        "ends_at": ends_at.isoformat(),
        "slot_id": other.pk,
        "slot_starts_at": other.starts_at.isoformat(),
        "slot_ends_at": other.ends_at.isoformat(),
    }


def _lock(profile: DoctorProfile) -> None:
    DoctorProfile.objects.select_for_update().filter(pk=profile.pk).first()


def slot_create(*, doctor: User, data: SlotInput, doctor_id: int | None = None, now: dt.datetime | None = None) -> Slot:
    now = now or timezone.now()
    profile = own_profile(doctor, doctor_id)
    _publishable(profile)
    _check_kind_capacity(data.kind, data.capacity, profile)
    _check_period(data.starts_at, data.ends_at, now)
    with transaction.atomic():
        _lock(profile)
        other = _overlapping(profile, data.kind, data.starts_at, data.ends_at)
        if other is not None:
            raise ConsultError(
                ConsultCode.SLOT_OVERLAP,
                count=1,
                field="starts_at",
                conflicts=[_conflict(data.starts_at, data.ends_at, other)],
            )
        slot = Slot.objects.create(
            doctor=profile,
            kind=data.kind,
            starts_at=data.starts_at,
            ends_at=data.ends_at,
            capacity=data.capacity,
            created_at=now,
        )
        audit_record(
            action="consult.slot_create",
            actor=doctor,
            object_type="consult_slot",
            object_id=slot.pk,
            detail={"visit_kind": data.kind, "capacity": data.capacity},
        )
    return slot


def _occurrences(t: WeekTemplate) -> list[tuple[dt.datetime, dt.datetime]]:
    out = []
    for offset in range(t.weeks * 7):
        day = t.from_date + dt.timedelta(days=offset)
        if day.isoweekday() in t.weekdays:
            out.append(
                (
                    dt.datetime.combine(day, t.start_time, tzinfo=BEIJING),
                    dt.datetime.combine(day, t.end_time, tzinfo=BEIJING),
                )
            )
    return out


def slots_batch_create(
    *, doctor: User, template: WeekTemplate, doctor_id: int | None = None, now: dt.datetime | None = None
) -> list[Slot]:
    """A week template over ``weeks`` weeks from ``from_date``: every slot or none."""
    now = now or timezone.now()
    profile = own_profile(doctor, doctor_id)
    _publishable(profile)
    _check_kind_capacity(template.kind, template.capacity, profile)
    days = sorted(set(template.weekdays))
    if not days or any(d < 1 or d > 7 for d in days):
        raise Invalid("请选择星期几出诊", field="weekdays")
    if not (1 <= template.weeks <= MAX_WEEKS):
        raise Invalid(f"周数须在1到{MAX_WEEKS}之间", field="weeks")
    template = WeekTemplate(**{**template.__dict__, "weekdays": days})
    start = dt.datetime.combine(template.from_date, template.start_time)
    end = dt.datetime.combine(template.from_date, template.end_time)
    if end <= start:
        raise ConsultError(ConsultCode.SLOT_ENDS_BEFORE_START, field="end_time")
    if end - start > dt.timedelta(hours=MAX_SLOT_HOURS):
        raise ConsultError(ConsultCode.SLOT_TOO_LONG, hours=MAX_SLOT_HOURS, field="end_time")
    periods = _occurrences(template)
    if not periods:
        raise Invalid("所选日期范围内没有所选的星期几", field="weekdays")
    past = [s for s, _ in periods if s <= now]
    if past:
        raise ConsultError(
            ConsultCode.SLOT_IN_PAST, field="from_date", dates=[s.astimezone(BEIJING).date().isoformat() for s in past]
        )
    with transaction.atomic():
        _lock(profile)
        conflicts = []
        for s, e in periods:
            other = _overlapping(profile, template.kind, s, e)
            if other is not None:
                conflicts.append(_conflict(s, e, other))
        if conflicts:
            raise ConsultError(ConsultCode.SLOT_OVERLAP, count=len(conflicts), field="start_time", conflicts=conflicts)
        slots = Slot.objects.bulk_create(
            [
                Slot(
                    doctor=profile,
                    kind=template.kind,
                    starts_at=s,
                    ends_at=e,
                    capacity=template.capacity,
                    created_at=now,
                )
                for s, e in periods
            ]
        )
        audit_record(
            action="consult.slot_batch_create",
            actor=doctor,
            object_type="doctor_profile",
            object_id=profile.pk,
            detail={
                "visit_kind": template.kind,
                "capacity": template.capacity,
                "weeks": template.weeks,
                "count": len(slots),
            },
        )
    return slots


def slot_set_capacity(*, doctor: User, slot_id: int, capacity: int) -> Slot:
    """A slot's places: never below those already booked (checked under the slot's lock,
    and the ``slot_not_overbooked`` constraint stands behind it)."""
    if not (1 <= capacity <= MAX_CAPACITY):
        raise Invalid(f"名额须在1到{MAX_CAPACITY}之间", field="capacity")
    with transaction.atomic():
        slot = Slot.objects.select_for_update().filter(pk=slot_id).first()
        if slot is None or not may_manage(doctor, slot):
            raise NotFound("号源")
        if slot.status != Slot.Status.OPEN or slot.ends_at <= timezone.now():
            raise ConsultError(ConsultCode.SLOT_CLOSED)
        if capacity < slot.booked:
            raise ConsultError(ConsultCode.CAPACITY_BELOW_BOOKED, booked=slot.booked, field="capacity")
        if capacity != slot.capacity:
            was = slot.capacity
            slot.capacity = capacity
            slot.save(update_fields=["capacity"])
            audit_record(
                action="consult.slot_capacity",
                actor=doctor,
                object_type="consult_slot",
                object_id=slot.pk,
                detail={"capacity_from": was, "capacity_to": capacity},
            )
    return slot


def may_manage(actor: User, slot: Slot) -> bool:
    """The slot's own doctor, or a sysadmin."""
    if actor.role == Role.SYSADMIN:
        return True
    profile = selectors.profile_of(actor)
    return profile is not None and slot.doctor_id == profile.pk


def my_slots(*, doctor: User, start: dt.date, days: int, doctor_id: int | None = None) -> list[Slot]:
    """The doctor's own slots (open and closed) of ``days`` days from ``start`` (Beijing dates)."""
    profile = own_profile(doctor, doctor_id)
    if not (1 <= days <= MAX_DAYS):
        raise Invalid(f"天数须在1到{MAX_DAYS}之间", field="days")
    since = dt.datetime.combine(start, dt.time.min, tzinfo=BEIJING)
    until = since + dt.timedelta(days=days)
    return list(
        Slot.objects.filter(doctor=profile, starts_at__lt=until, ends_at__gt=since).order_by("starts_at", "id")[:1000]
    )


def my_slot_row(s: Slot) -> dict[str, Any]:
    return {
        **selectors.slot_row(s),
        "booked": s.booked,
        "status_label": Slot.Status(s.status).label,
        "is_past": s.ends_at <= timezone.now(),
    }
