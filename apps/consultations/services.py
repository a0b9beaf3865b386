"""Booking and the doctor's side of a visit (issue 13).

Every status change goes through ``apps.core.lifecycle.transition`` with
``states.VISIT_TRANSITIONS``, in one transaction with the slot place, the order
and the audit record; pushes go out after commit (``events``, ``queue``).

- Booking takes a slot place with one conditional UPDATE (``booked < capacity``,
  backed by the ``slot_not_overbooked`` constraint): never overbooked. R1: a prior
  record of the patient must be on file; R3: a child under 6 needs a guardian; R5:
  the doctor must be qualified. The order (item kind ``consultation``) is created
  in the same transaction: a refusal writes nothing.
- Money back is always the whole order through ``commerce.order_refund_automatic``
  (a rule decided it: no staff approval).
- Accepting needs this visit's identity step-up (R4) within
  ``CONSULT_STEP_UP_MINUTES``, 复诊 confirmed and a prior record the doctor has
  accepted (an upload) or from the HIS (R1)."""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.accounts.models import LoginThrottle, Patient, User
from apps.accounts.roles import Role
from apps.audit.services import audit_record
from apps.commerce import services as commerce
from apps.commerce.models import Order, OrderItem
from apps.core import lifecycle
from apps.core.lifecycle import AuditEntry
from apps.timed.errors import TimedCode, TimedError
from apps.timed.services import session_end, session_extend
from hub.errors import Forbidden, Invalid, NotFound

from . import events, selectors
from .errors import ConsultCode, ConsultError
from .invitations import members_join
from .models import Department, DoctorProfile, PriorRecord, Slot, Visit, VisitKind
from .queue import queue_changed
from .states import OPEN, VISIT_TRANSITIONS
from .timing import start_visit_session

log = logging.getLogger(__name__)

ITEM_KIND = "consultation"
REFUSED = ConsultCode.TRANSITION_REFUSED
GUARDIAN_AGE = 6
PHONE_RE = re.compile(r"^1[3-9]\d{9}$")

AUDIT_ACTIONS: dict[str, str] = {
    "pay": "consult.visit_pay",
    "cancel": "consult.visit_cancel",
    "reschedule": "consult.visit_reschedule",
    "take": "consult.visit_take",
    "accept": "consult.visit_accept",
    "terminate": "consult.visit_terminate",
    "call": "consult.visit_call",
    "end": "consult.visit_end",
}


def _transition(
    visit: Visit,
    action: str,
    *,
    actor: User | None,
    fields: list[str],
    detail: dict[str, Any] | None = None,
    reason: str = "",
) -> Visit:
    visit.updated_at = timezone.now()
    return lifecycle.transition(
        visit,
        action,
        table=VISIT_TRANSITIONS,
        actor=actor,
        code=REFUSED,
        reason=reason,
        fields=[*fields, "updated_at"],
        audit=AuditEntry(
            action=AUDIT_ACTIONS[action],
            object_type="consult_visit",
            object_id=visit.public_id,
            detail={"patient": visit.patient_id, **(detail or {})},
            actor_username="" if actor else "system",
        ),
        publish=events.publications,
    )


def _locked(public_id: str) -> Visit:
    visit = Visit.objects.select_for_update(of=("self",)).filter(public_id=public_id).first()
    if visit is None:
        raise NotFound("问诊")
    return visit


def _changed(visit: Visit, *, doctor_id: int | None = None) -> None:
    """The queue the visit is (or was) in changed."""
    queue_changed(doctor_id=doctor_id if doctor_id is not None else visit.doctor_id, department_id=visit.department_id)


def _release_place(visit: Visit) -> None:
    if visit.slot_id is not None:
        Slot.objects.filter(pk=visit.slot_id, booked__gt=0).update(booked=F("booked") - 1)


def _refund(visit: Visit, reason: str) -> None:
    """The whole order back (after commit at the provider); nothing when unpaid."""
    if visit.order_no:
        commerce.order_refund_automatic(order_no=visit.order_no, reason=reason)


def _close_unpaid_order(visit: Visit) -> None:
    """An unpaid order of a cancelled visit: expired now when due; else left to commerce's
    own expiry (a payment arriving later is refunded by ``visit_mark_paid``)."""
    order = Order.objects.filter(order_no=visit.order_no).first() if visit.order_no else None
    if order is not None and order.status == Order.Status.CREATED:
        if order.expires_at <= timezone.now():
            commerce.order_expire(order.pk)
        else:
            commerce.order_cancel(user=visit.account, order_no=order.order_no)


# --- booking --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BookingInput:
    patient_id: int
    kind: str
    chief_complaint: str
    prior_record_id: str = ""
    doctor_id: int | None = None
    department: str = ""
    slot_id: int | None = None
    guardian_name: str = ""
    guardian_relation: str = ""
    guardian_phone: str = ""
    channel: str = "sandbox"


def _prior_record(patient: Patient, prior_record_id: str) -> PriorRecord:
    """R1: a diagnosis on file for this patient (HIS, or an upload not rejected)."""
    qs = PriorRecord.objects.filter(patient=patient).exclude(review=PriorRecord.Review.REJECTED)
    record = qs.filter(public_id=prior_record_id).first() if prior_record_id else qs.first()
    if record is None:
        raise ConsultError(ConsultCode.NO_PRIOR_RECORD)
    return record


def _take_place(slot_id: int, doctor: DoctorProfile, kind: str) -> Slot:
    """One conditional UPDATE: a place or a refusal, never an overbooked slot."""
    now = timezone.now()
    base = Slot.objects.filter(pk=slot_id, doctor=doctor, kind=kind, status=Slot.Status.OPEN, ends_at__gt=now)
    if base.filter(booked__lt=F("capacity")).update(booked=F("booked") + 1) == 1:
        return Slot.objects.get(pk=slot_id)
    if base.exists():
        raise ConsultError(ConsultCode.SLOT_FULL)
    raise ConsultError(ConsultCode.SLOT_CLOSED)


def visit_book(*, account: User, data: BookingInput) -> Visit:
    if account.role != Role.PATIENT:
        raise Forbidden()
    if data.kind not in VisitKind.values:
        raise Invalid("问诊方式无效", field="kind")
    complaint = data.chief_complaint.strip()
    if not (2 <= len(complaint) <= 500):
        raise Invalid("请填写主诉（2-500字）", field="chief_complaint")
    patient = Patient.objects.filter(pk=data.patient_id, owner=account, is_active=True).first()
    if patient is None:
        raise NotFound("就诊人")
    # R3: a child under 6 is seen with a guardian present.
    guardian = (data.guardian_name.strip(), data.guardian_relation.strip(), data.guardian_phone.strip())
    if selectors.age_on(patient.birth_date, selectors.today()) < GUARDIAN_AGE and not all(guardian):
        raise ConsultError(ConsultCode.GUARDIAN_REQUIRED)
    if guardian[2] and not PHONE_RE.match(guardian[2]):
        raise Invalid("监护人手机号格式不正确", field="guardian_phone")
    doctor: DoctorProfile | None = None
    if data.doctor_id is not None:
        doctor = DoctorProfile.objects.select_related("department", "user").filter(pk=data.doctor_id).first()
        if doctor is None or not doctor.is_listed:
            raise ConsultError(ConsultCode.DOCTOR_UNAVAILABLE)
        if not selectors.qualified(doctor):
            raise ConsultError(ConsultCode.DOCTOR_NOT_QUALIFIED)
        if selectors.price_of(doctor, data.kind) <= 0:
            raise ConsultError(ConsultCode.KIND_NOT_OFFERED)
        if data.slot_id is None:
            raise Invalid("请选择预约时段", field="slot_id")
        department = doctor.department
    else:
        dept = Department.objects.filter(code=data.department, is_active=True).first()
        if dept is None or not dept.queue_enabled:
            raise ConsultError(ConsultCode.DOCTOR_UNAVAILABLE)
        if selectors.price_of(None, data.kind) <= 0:
            raise ConsultError(ConsultCode.KIND_NOT_OFFERED)
        department = dept
    with transaction.atomic():
        # One booking of this patient at a time: the duplicate check cannot race.
        Patient.objects.select_for_update().filter(pk=patient.pk).first()
        record = _prior_record(patient, data.prior_record_id)
        open_visits = Visit.objects.filter(patient=patient, status__in=list(OPEN))
        dup = open_visits.filter(doctor=doctor) if doctor else open_visits.filter(department=department)
        if dup.exists():
            raise ConsultError(ConsultCode.DUPLICATE_OPEN_VISIT)
        slot = _take_place(data.slot_id, doctor, data.kind) if doctor and data.slot_id is not None else None
        now = timezone.now()
        visit = Visit.objects.create(
            patient=patient,
            account=account,
            department=department,
            doctor=doctor,
            slot=slot,
            kind=data.kind,
            price_fen=selectors.price_of(doctor, data.kind),
            chief_complaint=complaint,
            prior_record=record,
            guardian_name=guardian[0][:64],
            guardian_relation=guardian[1][:16],
            guardian_phone=guardian[2][:32],
            created_at=now,
            updated_at=now,
        )
        audit_record(
            action="consult.visit_book",
            actor=account,
            object_type="consult_visit",
            object_id=visit.public_id,
            detail={"patient": patient.pk, "doctor": doctor.user_id if doctor else None, "kind": data.kind},
        )
        order = commerce.order_checkout(
            payer=account,
            patient_id=patient.pk,
            lines=[commerce.CheckoutLine(kind=ITEM_KIND, ref=visit.public_id, quantity=1)],
            client_key=f"consult-{visit.public_id}",
            channel=data.channel,
        )
        visit.order_no = order.order_no
        visit.save(update_fields=["order_no"])
        if order.status != Order.Status.CREATED:
            # Nothing to pay (waived): commerce recorded it paid; its handler moves the visit on.
            log.info("visit %s booked with a free order %s", visit.public_id, order.order_no)
    return visit


# --- commerce handlers ----------------------------------------------------------------------------


def visit_mark_paid(*, public_id: str, order_no: str) -> None:
    """commerce: the order was paid. A visit no longer waiting for payment (cancelled
    meanwhile) gets its money back at once."""
    with transaction.atomic():
        visit = _locked(public_id)
        if visit.status != Visit.Status.PENDING_PAYMENT:
            if visit.status == Visit.Status.CANCELLED and visit.order_no == order_no:
                transaction.on_commit(lambda: _refund_late(order_no))
            return
        visit.queued_at = timezone.now()
        _transition(visit, "pay", actor=None, fields=["queued_at"], detail={"order_no": order_no})
        _changed(visit)


def _refund_late(order_no: str) -> None:
    commerce.order_refund_automatic(order_no=order_no, reason="问诊已取消，退还全部费用")


def visit_mark_refunded(*, public_id: str) -> None:
    """commerce: money went back (a refund decided elsewhere): a visit still waiting is cancelled."""
    with transaction.atomic():
        visit = Visit.objects.select_for_update(of=("self",)).filter(public_id=public_id).first()
        if visit is None or visit.status not in (Visit.Status.WAITING, Visit.Status.ACCEPTED):
            return
        visit.end_reason = "refunded"
        visit.ended_at = timezone.now()
        _transition(visit, "cancel", actor=None, fields=["end_reason", "ended_at"])
        _release_place(visit)
        _changed(visit)


# --- the patient: cancel, reschedule --------------------------------------------------------------


def _own(account: User, public_id: str) -> Visit:
    visit = Visit.objects.filter(public_id=public_id, account=account).first()
    if visit is None or account.role != Role.PATIENT:
        raise NotFound("问诊")
    return visit


def visit_cancel(*, account: User, public_id: str) -> Visit:
    """Before the doctor accepts: cancelled, the place released, the money back in full.
    After: ``consult.cancel_too_late``."""
    _own(account, public_id)
    with transaction.atomic():
        visit = _locked(public_id)
        if visit.status in (Visit.Status.ACCEPTED, Visit.Status.IN_PROGRESS):
            raise ConsultError(ConsultCode.CANCEL_TOO_LATE)
        was = visit.status
        visit.end_reason = "patient"
        visit.ended_at = timezone.now()
        _transition(visit, "cancel", actor=account, fields=["end_reason", "ended_at"])
        _release_place(visit)
        if was == Visit.Status.PENDING_PAYMENT:
            _close_unpaid_order(visit)
        else:
            _refund(visit, "患者在医生接诊前取消问诊，全额退款")
            _changed(visit)
    return visit


def visit_reschedule(*, account: User, public_id: str, slot_id: int) -> Visit:
    """A waiting visit moves to another open slot of the same doctor and kind: the
    new place is taken and the old one released in one transaction."""
    _own(account, public_id)
    with transaction.atomic():
        visit = _locked(public_id)
        lifecycle.require(visit, "reschedule", table=VISIT_TRANSITIONS, code=REFUSED)
        if visit.doctor_id is None or visit.slot_id is None:
            raise ConsultError(ConsultCode.SLOT_CLOSED)
        if visit.reschedule_count >= settings.CONSULT_MAX_RESCHEDULES:
            raise ConsultError(ConsultCode.RESCHEDULE_LIMIT, max=settings.CONSULT_MAX_RESCHEDULES)
        if slot_id == visit.slot_id:
            raise ConsultError(ConsultCode.SLOT_CLOSED)
        doctor = DoctorProfile.objects.get(pk=visit.doctor_id)
        old = visit.slot_id
        # Both slot rows locked in id order: two patients swapping slots cannot deadlock.
        list(Slot.objects.select_for_update().filter(pk__in=[old, slot_id]).order_by("pk").values_list("pk"))
        slot = _take_place(slot_id, doctor, visit.kind)
        Slot.objects.filter(pk=old, booked__gt=0).update(booked=F("booked") - 1)
        visit.slot = slot
        visit.reschedule_count += 1
        visit.queued_at = timezone.now()
        _transition(
            visit,
            "reschedule",
            actor=account,
            fields=["slot", "reschedule_count", "queued_at"],
            detail={"from_slot": old, "to_slot": slot.pk},
        )
        _changed(visit)
    return visit


def visits_expire_unpaid(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    """The sweep: visits unpaid CONSULT_PAYMENT_MINUTES after booking are cancelled
    and their places released. Safe to re-run (each row under its lock)."""
    now = now or timezone.now()
    due = now - dt.timedelta(minutes=settings.CONSULT_PAYMENT_MINUTES)
    ids = list(
        Visit.objects.filter(status=Visit.Status.PENDING_PAYMENT, created_at__lte=due)
        .order_by("created_at")
        .values_list("public_id", flat=True)[:limit]
    )
    done = 0
    for public_id in ids:
        with transaction.atomic():
            visit = _locked(public_id)
            if visit.status != Visit.Status.PENDING_PAYMENT:
                continue
            visit.end_reason = "unpaid"
            visit.ended_at = now
            _transition(visit, "cancel", actor=None, fields=["end_reason", "ended_at"])
            _release_place(visit)
            order = Order.objects.filter(order_no=visit.order_no, status=Order.Status.CREATED).first()
            if order is not None and order.expires_at <= now:
                commerce.order_expire(order.pk, now=now)
            done += 1
    return done


def visits_expire_uncalled(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    """The sweep: an accepted visit never called in is cancelled with a full refund and the
    patient told, CONSULT_CALL_GRACE_MINUTES after its slot ended (a department visit, with
    no slot: after it was accepted). Safe to re-run (each row under its lock)."""
    now = now or timezone.now()
    due = now - dt.timedelta(minutes=settings.CONSULT_CALL_GRACE_MINUTES)
    accepted = Visit.objects.filter(status=Visit.Status.ACCEPTED, called_at__isnull=True)
    ids = list(
        accepted.filter(Q(slot__ends_at__lte=due) | Q(slot__isnull=True, accepted_at__lte=due))
        .order_by("accepted_at")
        .values_list("public_id", flat=True)[:limit]
    )
    done = 0
    for public_id in ids:
        with transaction.atomic():
            visit = _locked(public_id)
            if visit.status != Visit.Status.ACCEPTED:
                continue  # called in (or ended) meanwhile
            visit.end_reason = "not_called"
            visit.ended_at = now
            _transition(visit, "cancel", actor=None, fields=["end_reason", "ended_at"])
            _release_place(visit)
            _refund(visit, "医生未按时叫号，全额退款")
            _notify(visit, "问诊已取消", "医生未能在预约时段内为您接诊，本次问诊已取消，费用将全额退回。可重新预约。")
            _changed(visit)
            done += 1
    return done


# --- the doctor -----------------------------------------------------------------------------------


def doctor_set_online(*, doctor: User, online: bool) -> DoctorProfile:
    profile = selectors.profile_of(doctor)
    if profile is None:
        raise NotFound("医生资料")
    if online and not selectors.qualified(profile):
        raise ConsultError(ConsultCode.DOCTOR_NOT_QUALIFIED)
    profile.is_online = online
    profile.save(update_fields=["is_online"])
    audit_record(
        action="consult.doctor_online" if online else "consult.doctor_offline",
        actor=doctor,
        object_type="doctor_profile",
        object_id=profile.pk,
    )
    return profile


def slot_close(*, doctor: User, slot_id: int) -> Slot:
    """The doctor (or a sysadmin) stops a slot: its open visits are cancelled with full
    refunds and the patients told."""
    slot = Slot.objects.select_related("doctor").filter(pk=slot_id).first()
    own = selectors.profile_of(doctor)
    if slot is None or not (doctor.role == Role.SYSADMIN or (own is not None and slot.doctor_id == own.pk)):
        raise NotFound("号源")
    profile = slot.doctor
    with transaction.atomic():
        # Visits before their slot, as cancelling and terminating lock them (no deadlock);
        # a booking that lands meanwhile is taken by the second pass, after the slot is closed.
        _lock_open_visits(slot_id)
        slot = Slot.objects.select_for_update().get(pk=slot_id)
        if slot.status == Slot.Status.CLOSED:
            return slot
        slot.status = Slot.Status.CLOSED
        slot.save(update_fields=["status"])
        audit_record(action="consult.slot_close", actor=doctor, object_type="consult_slot", object_id=slot.pk)
        for visit in _lock_open_visits(slot_id):
            was = visit.status
            visit.end_reason = "slot_closed"
            visit.ended_at = timezone.now()
            _transition(visit, "cancel", actor=doctor, fields=["end_reason", "ended_at"])
            _release_place(visit)
            if was == Visit.Status.PENDING_PAYMENT:
                _close_unpaid_order(visit)
            else:
                _refund(visit, "医生停诊，全额退款")
            _notify(visit, "问诊已取消", "医生该时段停诊，您的预约已取消，费用将全额退回。可重新预约其他时段。")
        queue_changed(doctor_id=profile.pk, department_id=profile.department_id)
    return slot


def _lock_open_visits(slot_id: int) -> list[Visit]:
    """The slot's visits that closing it cancels (not those already in the room), locked in id order."""
    cancellable = [s for s in OPEN if s != Visit.Status.IN_PROGRESS]
    return list(
        Visit.objects.select_for_update(of=("self",)).filter(slot_id=slot_id, status__in=cancellable).order_by("pk")
    )


def _notify(visit: Visit, title: str, text: str) -> None:
    from apps.notifications.services import notify_user

    notify_user(
        user=visit.account,
        template="notice",
        params={"title": title, "text": text},
        dedupe_key=f"consult:{visit.public_id}:{visit.status}",
    )


def visit_take(*, doctor: User, public_id: str) -> Visit:
    """A doctor of the department takes a visit of its queue (the oldest first on the
    workbench); a visit taken by someone else meanwhile is refused."""
    visit, profile = selectors.visit_of_doctor(doctor, public_id)
    if not selectors.qualified(profile) or not profile.is_online:
        raise ConsultError(
            ConsultCode.DOCTOR_NOT_QUALIFIED if not selectors.qualified(profile) else ConsultCode.DOCTOR_UNAVAILABLE
        )
    with transaction.atomic():
        visit = _locked(public_id)
        if visit.doctor_id is not None:
            raise ConsultError(ConsultCode.NOT_YOUR_VISIT)
        if selectors.price_of(profile, visit.kind) <= 0:
            raise ConsultError(ConsultCode.KIND_NOT_OFFERED)
        visit.doctor = profile
        _transition(visit, "take", actor=doctor, fields=["doctor"])
        queue_changed(doctor_id=None, department_id=visit.department_id)
        queue_changed(doctor_id=profile.pk, department_id=visit.department_id)
    return visit


def _throttle_key(doctor: User) -> tuple[str, str]:
    return f"consult.step_up:{doctor.pk}", "-"


def _step_up_attempt(doctor: User) -> int:
    """Count one attempt under the row's lock before the secret is looked at (like login)."""
    username, ip = _throttle_key(doctor)
    now = timezone.now()
    window = dt.timedelta(minutes=settings.CONSULT_STEP_UP_LOCK_MINUTES)
    with transaction.atomic():
        row, _ = LoginThrottle.objects.select_for_update().get_or_create(username=username, ip=ip)
        if row.locked_until and row.locked_until > now:
            raise ConsultError(ConsultCode.STEP_UP_LOCKED)
        if row.first_failure_at is None or now - row.first_failure_at > window or row.locked_until:
            row.failures, row.first_failure_at, row.locked_until = 0, now, None
        if row.failures >= settings.CONSULT_STEP_UP_MAX_FAILURES:
            row.locked_until = now + window
            row.save()
            raise ConsultError(ConsultCode.STEP_UP_LOCKED)
        row.failures += 1
        row.save()
    return row.failures


def visit_step_up(*, doctor: User, public_id: str, method: str, secret: str) -> Visit:
    """R4: the doctor proves again who they are for this visit (password or TOTP).
    Wrong answers count per doctor; CONSULT_STEP_UP_MAX_FAILURES lock it. Audited,
    never the secret."""
    from apps.accounts.services import totp_verify

    visit, _ = selectors.visit_of_doctor(doctor, public_id)
    if visit.doctor_id is None:
        raise ConsultError(ConsultCode.NOT_YOUR_VISIT)
    if method not in Visit.StepUpMethod.values:
        raise Invalid("验证方式无效", field="method")
    lifecycle.require(visit, "accept", table=VISIT_TRANSITIONS, code=REFUSED)
    attempt = _step_up_attempt(doctor)
    ok = doctor.check_password(secret) if method == Visit.StepUpMethod.PASSWORD else totp_verify(doctor, secret)
    if not ok:
        locked = attempt >= settings.CONSULT_STEP_UP_MAX_FAILURES
        username, ip = _throttle_key(doctor)
        with transaction.atomic():
            audit_record(
                action="consult.step_up_failed",
                actor=doctor,
                object_type="consult_visit",
                object_id=visit.public_id,
                result="failed",
                detail={"method": method, "failures": attempt},
            )
            if locked:
                LoginThrottle.objects.filter(username=username, ip=ip).update(
                    locked_until=timezone.now() + dt.timedelta(minutes=settings.CONSULT_STEP_UP_LOCK_MINUTES)
                )
        if locked:
            raise ConsultError(ConsultCode.STEP_UP_LOCKED)
        raise ConsultError(ConsultCode.STEP_UP_FAILED, remaining=settings.CONSULT_STEP_UP_MAX_FAILURES - attempt)
    LoginThrottle.objects.filter(username=_throttle_key(doctor)[0]).delete()
    with transaction.atomic():
        visit = _locked(public_id)
        visit.step_up_at = timezone.now()
        visit.step_up_method = method
        visit.save(update_fields=["step_up_at", "step_up_method"])
        audit_record(
            action="consult.step_up",
            actor=doctor,
            object_type="consult_visit",
            object_id=visit.public_id,
            detail={"method": method},
        )
    return visit


def step_up_valid_until(visit: Visit) -> dt.datetime | None:
    if visit.step_up_at is None:
        return None
    return visit.step_up_at + dt.timedelta(minutes=settings.CONSULT_STEP_UP_MINUTES)


def visit_accept(*, doctor: User, public_id: str, confirm_followup: bool) -> Visit:
    visit, _ = selectors.visit_of_doctor(doctor, public_id)
    if visit.doctor_id is None:
        raise ConsultError(ConsultCode.NOT_YOUR_VISIT)  # take it from the department queue first
    with transaction.atomic():
        visit = _locked(public_id)
        lifecycle.require(visit, "accept", table=VISIT_TRANSITIONS, code=REFUSED)
        until = step_up_valid_until(visit)
        if until is None or until < timezone.now():
            raise ConsultError(ConsultCode.STEP_UP_REQUIRED)
        if not confirm_followup:
            raise ConsultError(ConsultCode.FOLLOWUP_NOT_CONFIRMED)
        record = (
            PriorRecord.objects.filter(pk=visit.prior_record_id, patient_id=visit.patient_id).first()
            if visit.prior_record_id
            else None
        )
        if record is None or record.review == PriorRecord.Review.REJECTED:
            raise ConsultError(ConsultCode.NO_PRIOR_RECORD)
        if record.source == PriorRecord.Source.UPLOAD and record.review != PriorRecord.Review.ACCEPTED:
            raise ConsultError(ConsultCode.PRIOR_RECORD_UNREVIEWED)
        now = timezone.now()
        visit.followup_confirmed_at = now
        visit.accepted_at = now
        _transition(
            visit,
            "accept",
            actor=doctor,
            fields=["followup_confirmed_at", "accepted_at"],
            detail={"step_up": visit.step_up_method, "prior_record": record.public_id},
        )
        _changed(visit)
    return visit


ADVICE = {
    Visit.TerminateReason.FIRST_VISIT: "在线问诊仅限复诊。您本次为初诊，请前往医院门诊就诊，明确诊断后可再在线复诊。",
    Visit.TerminateReason.CONDITION_CHANGED: "您的病情有变化，需要医生当面检查，请尽快到医院门诊就诊。",
    Visit.TerminateReason.NEEDS_EXAM: "您需要做线下检查后才能进一步诊治，请到医院门诊就诊并完成检查。",
    Visit.TerminateReason.EMERGENCY: "您的情况可能较紧急，请立即前往最近医院急诊或拨打120。",
    Visit.TerminateReason.OTHER: "医生建议您到医院门诊就诊。",
}


def visit_terminate(*, doctor: User, public_id: str, reason: str, note: str = "") -> Visit:
    """R2: the doctor ends the visit and sends the patient offline: full refund through
    commerce, an advice card in the visit's conversation, a notice to the patient."""
    if reason not in Visit.TerminateReason.values:
        raise Invalid("请选择终止原因", field="reason")
    visit, _ = selectors.visit_of_doctor(doctor, public_id)
    if visit.doctor_id is None:
        raise ConsultError(ConsultCode.NOT_YOUR_VISIT)
    with transaction.atomic():
        visit = _locked(public_id)
        was = visit.status
        now = timezone.now()
        visit.terminate_reason = reason
        visit.terminate_note = note.strip()[:500]
        visit.end_reason = "terminated"
        visit.ended_at = now
        _transition(
            visit,
            "terminate",
            actor=doctor,
            fields=["terminate_reason", "terminate_note", "end_reason", "ended_at"],
            detail={"reason": reason},
            reason=reason,
        )
        if was == Visit.Status.WAITING:
            _release_place(visit)
        _refund(visit, f"医生终止问诊（{Visit.TerminateReason(reason).label}），全额退款")
        advice = ADVICE[Visit.TerminateReason(reason)]
        if visit.conversation_id:
            from apps.im.models import Conversation
            from apps.im.services import card_post

            conv = Conversation.objects.filter(pk=visit.conversation_id).first()
            if conv is not None:
                card_post(
                    conversation=conv,
                    sender=doctor,
                    card_type="consult_advice",
                    data={
                        "visit_id": visit.public_id,
                        "title": "建议线下就诊",
                        "reason_label": Visit.TerminateReason(reason).label,
                        "advice": advice,
                        "refund": "本次问诊费用将全额退回",
                    },
                    client_msg_id=f"consult-advice-{visit.public_id}",
                )
        _notify(visit, "问诊已终止，建议线下就诊", f"{advice}本次问诊费用将全额退回。")
        _changed(visit)
        if visit.timed_session_id:
            session_end(visit.timed_session_id, "terminated", actor=doctor)
    return visit


def visit_call(*, doctor: User, public_id: str) -> Visit:
    """Call the patient in: the visit's conversation (its media room is ``conv-<id>``),
    the care relationship (reason visit), the transition to in_progress, ``visit.called``."""
    from apps.care_team.models import CareRelationship
    from apps.care_team.services import relationship_open
    from apps.im.models import Conversation
    from apps.im.services import conversation_for_pair
    from hub.realtime.sessions import publish_on_commit

    visit, _ = selectors.visit_of_doctor(doctor, public_id)
    if visit.doctor_id is None:
        raise ConsultError(ConsultCode.NOT_YOUR_VISIT)
    with transaction.atomic():
        visit = _locked(public_id)
        lifecycle.require(visit, "call", table=VISIT_TRANSITIONS, code=REFUSED)
        conv = conversation_for_pair(
            staff=doctor, patient=visit.account, kind=Conversation.Kind.VISIT, ref_type="visit", ref_id=visit.public_id
        )
        now = timezone.now()
        relationship_open(
            staff=doctor,
            patient=visit.patient,
            reason=CareRelationship.Reason.VISIT,
            until=now + dt.timedelta(days=settings.CONSULT_CARE_DAYS),
            source_type="consultation",
            source_id=visit.public_id,
            department=visit.department.name,
            created_by=doctor,
        )
        members_join(visit, conv)  # family / interpreter / doctor who joined while the patient waited
        visit.conversation_id = conv.pk
        visit.called_at = now
        _transition(visit, "call", actor=doctor, fields=["conversation_id", "called_at"])
        publish_on_commit(*events.called(visit))
        _changed(visit)
        start_visit_session(visit, actor=doctor)  # the duration of its kind; deadline kept by the server
    return visit


def visit_end(*, public_id: str, actor: User | None, reason: str = "doctor") -> Visit:
    """The visit ends (the doctor, or ``reason="deadline"`` from the timed session); its
    order item is delivered."""
    with transaction.atomic():
        visit = _locked(public_id)
        visit.ended_at = timezone.now()
        visit.end_reason = reason[:16]
        _transition(visit, "end", actor=actor, fields=["ended_at", "end_reason"], detail={"reason": reason})
        _changed(visit)
        # The doctor ending it ends the timed session (closing the room and the chat); the
        # session's own deadline comes here through visit_session_ended (already ended: a no-op).
        if visit.timed_session_id:
            session_end(visit.timed_session_id, "deadline" if reason == "deadline" else "ended", actor=actor)
        item = OrderItem.objects.filter(order__order_no=visit.order_no, kind=ITEM_KIND, ref=visit.public_id).first()
        if item is not None:
            item_id = item.pk
            transaction.on_commit(lambda: _delivered(item_id))
    return visit


def visit_session_ended(session: Any, reason: str) -> None:
    """The timed session's ``on_end`` (inside its end transaction): a visit still in
    progress ends with it (the deadline, enforced by the server with no client needed)."""
    visit = Visit.objects.filter(public_id=session.owner_id).only("status").first()
    if visit is None or visit.status != Visit.Status.IN_PROGRESS:
        return  # ended or terminated by its own action first
    visit_end(public_id=session.owner_id, actor=None, reason="deadline" if reason == "deadline" else reason)


def visit_extend(*, doctor: User, public_id: str) -> Visit:
    """The doctor extends the running visit once (billed: ``timing.bill_extension``)."""
    visit, _ = selectors.visit_of_doctor(doctor, public_id)
    if visit.doctor_id is None:
        raise ConsultError(ConsultCode.NOT_YOUR_VISIT)
    if visit.status != Visit.Status.IN_PROGRESS or not visit.timed_session_id:
        raise ConsultError(ConsultCode.TRANSITION_REFUSED, status=visit.status, action="extend")
    try:
        session_extend(visit.timed_session_id, doctor)
    except TimedError as exc:
        if exc.code == TimedCode.ALREADY_EXTENDED:
            raise ConsultError(ConsultCode.EXTENSION_USED) from None
        raise
    return visit


def _delivered(item_id: int) -> None:
    try:
        commerce.order_item_delivered(item_id=item_id)
    except NotFound:  # not paid through a handler run yet (or refunded): nothing to deliver
        log.info("consultation item %s not delivered (no paid fulfilment)", item_id)


def doctor_end(*, doctor: User, public_id: str) -> Visit:
    visit, _ = selectors.visit_of_doctor(doctor, public_id)
    if visit.doctor_id is None:
        raise ConsultError(ConsultCode.NOT_YOUR_VISIT)
    return visit_end(public_id=public_id, actor=doctor, reason="doctor")
