"""Writes of the scales domain: assign, save answers, submit and score, cancel,
alerts (raise, escalate, acknowledge, close), review and sign, duty roster.

Every status change goes through apps.core.lifecycle.transition with the
tables in states.py: it locks the row, checks the table, saves, writes the
event row and the audit record, and publishes after commit."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Patient, StaffProfile, User
from apps.accounts.roles import Role
from apps.audit.services import audit_record
from apps.core import lifecycle
from apps.core.lifecycle import AuditEntry, Publication
from apps.im.models import Conversation
from hub.errors import Invalid, NotFound

from . import events, selectors
from .errors import PsychCode, PsychError
from .models import Alert, AlertEvent, Assignment, DutyShift, Result, ResultReview
from .scoring import AnswerError, check_answer, score
from .signing import review_signature
from .states import ALERT_TRANSITIONS, ASSIGNMENT_TRANSITIONS

log = logging.getLogger(__name__)
MAX_DUE_DAYS = 90
SH = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")


def _fmt_local(value: dt.datetime) -> str:
    return timezone.localtime(value).strftime("%m月%d日 %H:%M")


# --- assignment lifecycle -----------------------------------------------------------


REFUSED = PsychCode.TRANSITION_REFUSED


def _assignment_refused(status: str, action: str) -> PsychError:
    # The patient app tells "already submitted" and "closed" apart from other refusals.
    if status == Assignment.Status.SUBMITTED and action in ("answer", "submit"):
        return PsychError(PsychCode.ALREADY_SUBMITTED)
    if action in ("answer", "submit"):
        return PsychError(PsychCode.ASSIGNMENT_CLOSED, f"该量表{Assignment.Status(status).label}，不能填写")
    return PsychError(
        PsychCode.TRANSITION_REFUSED,
        f"当前状态为“{Assignment.Status(status).label}”，不能执行该操作",
        status=status,
        action=action,
    )


def _assignment_check(a: Assignment, action: str) -> None:
    """Refuse early, before validating answers or scoring (the refusal wins)."""
    lifecycle.require(a, action, table=ASSIGNMENT_TRANSITIONS, code=REFUSED, refused=_assignment_refused)


def _assignment_transition(
    a: Assignment,
    action: str,
    *,
    actor: User,
    fields: list[str],
    audit: AuditEntry | None = None,
    publish: Callable[[Assignment], Iterable[Publication]] | None = None,
) -> None:
    lifecycle.transition(
        a,
        action,
        table=ASSIGNMENT_TRANSITIONS,
        actor=actor,
        code=REFUSED,
        refused=_assignment_refused,
        fields=fields,
        audit=audit,
        publish=publish,
    )


def _check_patient_access(user: User, assignment_id: int) -> None:
    """Outside any transaction, so a denial's audit record is kept."""
    selectors.assignment_visible(user, assignment_id)
    if user.role != Role.PATIENT:
        raise NotFound("记录")


def _locked_assignment(assignment_id: int) -> Assignment:
    return (
        Assignment.objects.select_for_update(of=("self",))
        .select_related("patient", "scale", "assigned_by")
        .get(pk=assignment_id)
    )


def _card_conversation(doctor: User, patient: Patient) -> Conversation:
    from apps.im.services import conversation_for_pair

    conv = selectors.shared_conversation(doctor, patient.owner)
    if conv is not None:
        return conv
    # No open shared conversation any more (e.g. the visit was closed): a
    # care-team conversation for this 就诊人 carries the scales from now on.
    return conversation_for_pair(
        staff=doctor,
        patient=patient.owner,
        kind=Conversation.Kind.CARE_TEAM,
        ref_type="psych_patient",
        ref_id=str(patient.pk),
    )


def due_from_date(day: dt.date) -> dt.datetime:
    """A due date means the end of that day in Asia/Shanghai."""
    return dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=SH)


def assignments_create(
    *, doctor: User, patient_id: int, scale_codes: list[str], due_at: dt.datetime, note: str = ""
) -> list[Assignment]:
    """Assign one or more scales to one of the doctor's patients. One IM card
    and one notification cover the whole batch."""
    patient = Patient.objects.select_related("owner").filter(pk=patient_id, is_active=True).first()
    if patient is None or not selectors.doctor_may_assign(doctor, patient_id):
        audit_record(action="psych.assign", actor=doctor, object_type="patient", object_id=patient_id, result="denied")
        raise NotFound("就诊人")
    now = timezone.now()
    if due_at <= now or due_at > now + dt.timedelta(days=MAX_DUE_DAYS):
        raise PsychError(PsychCode.DUE_INVALID)
    codes = list(dict.fromkeys(c.strip() for c in scale_codes if c.strip()))
    if not codes:
        raise Invalid("请至少选择一个量表")
    scales = []
    for code in codes:
        scale = selectors.latest_scale(code)
        if scale is None:
            raise PsychError(PsychCode.SCALE_UNKNOWN, scale=code)
        scales.append(scale)
    batch = uuid.uuid4().hex
    with transaction.atomic():
        created = [
            Assignment.objects.create(
                patient=patient, scale=s, assigned_by=doctor, batch=batch, due_at=due_at, note=note[:200]
            )
            for s in scales
        ]
        names = "、".join(s.data["short_name"] for s in scales)
        summary = f"请在{_fmt_local(due_at)}前为{patient.name}完成心理量表：{names}"
        from apps.im.services import card_post

        conv = _card_conversation(doctor, patient)
        card_post(
            conversation=conv,
            sender=doctor,
            card_type="scale_assignment",
            data={
                "batch": batch,
                "assignment_ids": [a.pk for a in created],
                "patient_id": patient.pk,
                "patient_name": patient.name,
                "scales": [{"code": s.code, "name": s.data["short_name"]} for s in scales],
                "due_at": due_at.astimezone(dt.UTC).isoformat(),  # UTC, as the API (docs/api.md)
                "summary": summary,
                "page": "/pages/psych/list",
            },
            client_msg_id=f"psych-{batch}",
        )
        audit_record(
            action="psych.assign",
            actor=doctor,
            object_type="patient",
            object_id=patient.pk,
            detail={"assignments": [a.pk for a in created], "scales": codes, "conversation": conv.pk},
        )
        events.publish_to_user(
            patient.owner_id,
            "psych.assigned",
            {"batch": batch, "assignment_ids": [a.pk for a in created], "title": summary},
        )
        _notify(patient.owner_id, "心理量表待填写", summary, dedupe_key=f"psych.assign:{batch}")
    return created


def _notify(user_id: int, title: str, text: str, *, dedupe_key: str, urgent: bool = False) -> list[str]:
    """Offline notice through the notification outbox: the rows are written in
    the caller's transaction (nothing goes out for a rolled-back action) and
    sent after commit, retried by the outbox. Urgent (critical alerts) bypass
    quiet hours and preferences. Returns the channels chosen."""
    from apps.notifications.services import notify_user

    user = User.objects.filter(pk=user_id).first()
    if user is None:
        return []
    rows = notify_user(
        user=user, template="notice", params={"title": title, "text": text}, dedupe_key=dedupe_key, urgent=urgent
    )
    return [row.channel for row in rows]


def answers_save(*, user: User, assignment_id: int, answers: dict[int, int]) -> dict[str, Any]:
    """Save some answers (merging with those saved before). Refused once
    submitted: the submitted answers are final."""
    _check_patient_access(user, assignment_id)
    with transaction.atomic():
        a = _locked_assignment(assignment_id)
        _assignment_check(a, "answer")
        for item_no, value in answers.items():
            try:
                check_answer(a.scale.data, item_no, value)
            except AnswerError as exc:
                raise PsychError(PsychCode.ANSWER_INVALID, str(exc), item=exc.item) from None
        merged = {**a.draft_answers, **{str(k): v for k, v in answers.items()}}
        a.draft_answers = merged
        fields = ["draft_answers"]
        if a.started_at is None:
            a.started_at = timezone.now()
            fields.append("started_at")
        _assignment_transition(a, "answer", actor=user, fields=fields)
    return selectors.assignment_for_filling(a)


def assignment_submit(*, user: User, assignment_id: int, answers: dict[int, int] | None = None) -> Result:
    """Score the sheet and freeze it. Critical-item rules run on the answers
    themselves, whatever the total, and raise alerts to the assigning doctor."""
    _check_patient_access(user, assignment_id)
    with transaction.atomic():
        a = _locked_assignment(assignment_id)
        if answers:
            for item_no, value in answers.items():
                try:
                    check_answer(a.scale.data, item_no, value)
                except AnswerError as exc:
                    raise PsychError(PsychCode.ANSWER_INVALID, str(exc), item=exc.item) from None
        _assignment_check(a, "submit")
        sheet = {int(k): v for k, v in {**a.draft_answers, **{str(k): v for k, v in (answers or {}).items()}}.items()}
        try:
            s = score(a.scale.data, sheet, norm=settings.PSYCH_ZUNG_NORM, rounding=settings.PSYCH_STANDARD_ROUNDING)
        except AnswerError as exc:
            raise PsychError(PsychCode.INCOMPLETE, str(exc), first_missing_item=exc.item) from None
        now = timezone.now()
        a.draft_answers = {str(k): v for k, v in sorted(sheet.items())}
        a.submitted_at = now
        result = Result.objects.create(
            assignment=a,
            patient=a.patient,
            scale=a.scale,
            scale_code=a.scale.code,
            answers=a.draft_answers,
            raw_score=s.raw,
            standard_score=s.standard,
            norm=s.norm,
            norm_label=s.norm_label,
            rounding=s.rounding,
            band_code=s.band_code,
            band_label=s.band_label,
            band_severity=s.band_severity,
            flags=s.flags,
            critical=s.critical,
            submitted_by=user,
            submitted_at=now,
        )
        result_event = {
            "assignment_id": a.pk,
            "result_id": result.pk,
            "patient_id": a.patient_id,
            "patient_name": a.patient.name,
            "scale_code": a.scale.code,
            "band_label": s.band_label,
            "critical": bool(s.critical),
        }
        _assignment_transition(
            a,
            "submit",
            actor=user,
            fields=["draft_answers", "submitted_at"],
            audit=AuditEntry(
                action="psych.submit",
                object_type="psych_result",
                object_id=result.pk,
                # Ids and codes only (ADR 0038): each critical item has its own alert, audited by id.
                detail={"assignment": a.pk, "scale": a.scale.code},
            ),
            publish=lambda row: [(events.user_topic(row.assigned_by_id), "psych.result", result_event)],
        )
        for hit in s.critical:
            _alert_raise(result=result, assignment=a, hit=hit, now=now)
    return result


def assignment_cancel(*, doctor: User, assignment_id: int) -> Assignment:
    selectors.assignment_visible(doctor, assignment_id)
    if doctor.role != Role.DOCTOR:
        raise NotFound("记录")
    with transaction.atomic():
        a = _locked_assignment(assignment_id)
        a.cancelled_at = timezone.now()
        _assignment_transition(
            a,
            "cancel",
            actor=doctor,
            fields=["cancelled_at"],
            audit=AuditEntry(action="psych.cancel", object_type="psych_assignment", object_id=a.pk),
            publish=lambda row: [(events.user_topic(row.patient.owner_id), "psych.cancelled", {"assignment_id": a.pk})],
        )
    return a


# --- alerts ----------------------------------------------------------------------------


def _department_of(user: User) -> str:
    profile = StaffProfile.objects.filter(user=user).first()
    return profile.department if profile else ""


# What of an alert step's detail goes into the audit chain: ids and routing codes. The rule
# that fired, the item and its value stay in the alert's own (encrypted) log (ADR 0038).
ALERT_AUDIT_KEYS = frozenset({"doctor", "to", "department", "channels"})


def _alert_audit(alert: Alert, action: str, actor: User | None, detail: dict[str, Any]) -> AuditEntry:
    return AuditEntry(
        action=f"psych.alert.{action}",
        object_type="psych_alert",
        object_id=alert.pk,
        detail={k: v for k, v in detail.items() if k in ALERT_AUDIT_KEYS},
        actor_username="" if actor else "system",
    )


def _alert_log(alert: Alert, action: str, actor: User | None, note: str = "", **detail: Any) -> None:
    """An entry of the alert's own log that is not a status change (raised, notified, no on-duty)."""
    AlertEvent.objects.create(alert=alert, action=action, actor=actor, note=note[:500], detail=detail)
    _alert_audit(alert, action, actor, detail).write(actor)


def _alert_publications(event: str) -> Callable[[Alert], list[Publication]]:
    """To the assigning doctor and, once escalated, the on-duty doctor too."""

    def build(alert: Alert) -> list[Publication]:
        data = events.alert_payload(alert, alert.result.scale_code)
        recipients = {alert.doctor_id} | ({alert.escalated_to_id} if alert.escalated_to_id else set())
        return [(events.user_topic(user_id), event, data) for user_id in sorted(recipients)]

    return build


def _alert_transition(
    alert: Alert,
    action: str,
    logged: AlertEvent.Action,
    *,
    actor: User | None,
    fields: list[str],
    note: str = "",
    **detail: Any,
) -> None:
    """Change the alert's status (event row, audit, publish), then add the step to its own log."""
    lifecycle.transition(
        alert,
        action,
        table=ALERT_TRANSITIONS,
        actor=actor,
        code=REFUSED,
        # The note is clinical free text: it is kept encrypted in the alert's own log
        # below, not in plain in the transition event (ADR 0038).
        fields=fields,
        audit=_alert_audit(alert, logged, actor, detail),
        publish=_alert_publications(f"psych.alert.{logged}"),
    )
    AlertEvent.objects.create(alert=alert, action=logged, actor=actor, note=note[:500], detail=detail)


def _alert_raise(*, result: Result, assignment: Assignment, hit: dict[str, Any], now: dt.datetime) -> Alert:
    doctor = assignment.assigned_by
    alert = Alert.objects.create(
        result=result,
        patient=assignment.patient,
        rule_code=hit["code"],
        item=hit["item"],
        value=hit["value"],
        label=hit["label"][:128],
        doctor=doctor,
        department=_department_of(doctor),
        ack_deadline=now + dt.timedelta(minutes=settings.PSYCH_ALERT_ACK_MINUTES),
        created_at=now,
    )
    _alert_log(alert, AlertEvent.Action.RAISED, None, rule=hit["code"], item=hit["item"], doctor=doctor.pk)
    events.publish_alert(alert, "psych.alert.raised", result.scale_code)
    text = (
        f"{assignment.patient.name}的{result.scale_code}触发危急预警，请在{settings.PSYCH_ALERT_ACK_MINUTES}分钟内处理"
    )
    _notify(doctor.pk, "心理测评危急预警", text, dedupe_key=f"psych.alert:{alert.pk}:raised", urgent=True)
    _alert_log(alert, AlertEvent.Action.NOTIFIED, None, to=doctor.pk, channels=["realtime", "notice"])
    return alert


def alert_acknowledge(*, user: User, alert_id: int, note: str = "") -> Alert:
    selectors.alert_visible(user, alert_id)
    with transaction.atomic():
        alert = Alert.objects.select_for_update(of=("self",)).select_related("patient", "result").get(pk=alert_id)
        alert.acknowledged_by = user
        alert.acknowledged_at = timezone.now()
        _alert_transition(
            alert,
            "acknowledge",
            AlertEvent.Action.ACKNOWLEDGED,
            actor=user,
            note=note,
            fields=["acknowledged_by", "acknowledged_at"],
        )
    return alert


def alert_close(*, user: User, alert_id: int, note: str) -> Alert:
    if not note.strip():
        raise Invalid("请填写处理记录")
    selectors.alert_visible(user, alert_id)
    with transaction.atomic():
        alert = Alert.objects.select_for_update(of=("self",)).select_related("patient", "result").get(pk=alert_id)
        alert.closed_at = timezone.now()
        _alert_transition(alert, "close", AlertEvent.Action.CLOSED, actor=user, note=note, fields=["closed_at"])
    return alert


def on_duty_doctor(department: str, at: dt.datetime) -> User | None:
    shift = (
        DutyShift.objects.select_related("doctor")
        .filter(
            department=department, starts_at__lte=at, ends_at__gt=at, doctor__is_active=True, doctor__role=Role.DOCTOR
        )
        .order_by("-starts_at", "-id")
        .first()
    )
    return shift.doctor if shift else None


def alerts_escalate_due(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Escalate every open alert past its acknowledgement deadline to the
    department's on-duty doctor. Safe to re-run and to run in parallel
    (SKIP LOCKED); an alert without an on-duty doctor is retried next sweep."""
    now = now or timezone.now()
    escalated = waiting = 0
    due_ids = list(
        Alert.objects.filter(status=Alert.Status.OPEN, ack_deadline__lte=now)
        .order_by("ack_deadline")
        .values_list("id", flat=True)[:200]
    )
    for alert_id in due_ids:
        with transaction.atomic():
            alert = (
                Alert.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("patient", "result")
                .filter(pk=alert_id, status=Alert.Status.OPEN)
                .first()
            )
            if alert is None:
                continue
            target = on_duty_doctor(alert.department, now)
            if target is None or target.pk == alert.doctor_id:
                # Log "no on-duty doctor" once per alert, not on every sweep.
                if not alert.events.filter(action=AlertEvent.Action.NO_ON_DUTY).exists():
                    _alert_log(alert, AlertEvent.Action.NO_ON_DUTY, None, department=alert.department)
                    log.warning("psych alert %s: no on-duty doctor in %r", alert.pk, alert.department)
                waiting += 1
                continue
            alert.escalated_to = target
            alert.escalated_at = now
            _alert_transition(
                alert,
                "escalate",
                AlertEvent.Action.ESCALATED,
                actor=None,
                fields=["escalated_to", "escalated_at"],
                to=target.pk,
                department=alert.department,
            )
            text = f"{alert.patient.name}的心理测评危急预警超时未处理，已升级给您（值班）"
            _notify(
                target.pk,
                "心理测评预警升级",
                text,
                dedupe_key=f"psych.alert:{alert.pk}:escalated:{target.pk}",
                urgent=True,
            )
            escalated += 1
    return {"escalated": escalated, "waiting": waiting}


# --- review and signature ----------------------------------------------------------------


def result_sign(*, doctor: User, result_id: int, note: str) -> ResultReview:
    note = note.strip()
    if not note:
        raise Invalid("请填写医生意见")
    result = selectors.result_visible(doctor, result_id)
    if doctor.role != Role.DOCTOR:
        raise NotFound("记录")
    with transaction.atomic():
        # Serialise signers of the same result; the unique review row settles it.
        Result.objects.select_for_update().filter(pk=result.pk).first()
        if ResultReview.objects.filter(result=result).exists():
            raise PsychError(PsychCode.ALREADY_SIGNED)
        review = ResultReview.objects.create(
            result=result,
            note=note[:2000],
            signed_by=doctor,
            signature=review_signature(result, note[:2000], doctor.pk),
        )
        audit_record(action="psych.sign", actor=doctor, object_type="psych_result", object_id=result.pk)
    return review


# --- duty roster ---------------------------------------------------------------------------


def duty_shift_create(
    *, actor: User, department: str, doctor_id: int, starts_at: dt.datetime, ends_at: dt.datetime
) -> DutyShift:
    doctor = User.objects.filter(pk=doctor_id, role=Role.DOCTOR, is_active=True).first()
    if doctor is None:
        raise PsychError(PsychCode.DUTY_DOCTOR_INVALID)
    if ends_at <= starts_at:
        raise PsychError(PsychCode.DUTY_WINDOW_INVALID)
    with transaction.atomic():
        shift = DutyShift.objects.create(
            department=department.strip(), doctor=doctor, starts_at=starts_at, ends_at=ends_at, created_by=actor
        )
        audit_record(
            action="psych.duty_create",
            actor=actor,
            object_type="psych_duty_shift",
            object_id=shift.pk,
            detail={"department": shift.department, "doctor": doctor.pk},
        )
    return shift
