"""Reads of the scales domain and who may see what.

"The doctor's patients" are the 就诊人 the doctor holds in care by the one
core rule (``apps.care_team.selectors.patients_in_care``: a recorded care
relationship that has not ended or expired, or a live visit / care-team
conversation), plus the 就诊人 of alerts escalated to the doctor as the
on-duty doctor. The assigning doctor also keeps seeing the records of what
they assigned (they answer for its alerts), but assigning anew needs a care
relationship now. A patient account sees its own 就诊人 (self and family
members) only."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.accounts.models import Patient, User
from apps.accounts.roles import Role
from apps.accounts.selectors import age_of
from apps.audit.services import audit_record
from apps.care_team import selectors as care
from apps.im.models import Conversation
from hub.errors import NotFound

from .models import Alert, Assignment, Result, ScaleDefinition
from .signing import review_signature_valid

DISCLAIMER = "本结果为心理量表筛查结果，仅供参考，不能作为诊断依据；如有疑问请咨询专业医生。"
HELP_TEXT = (
    "您的回答提示您最近可能非常痛苦。请尽快与您的医生联系；如有伤害自己的想法或计划，"
    "请立即拨打全国心理援助热线 12356，或拨打 120 / 前往最近医院的急诊。"
)
ROUNDING_LABELS = {"none": "无需换算", "truncate": "取整（截去小数）", "round": "四舍五入"}


def doctor_patients(doctor: User) -> QuerySet[Patient]:
    if doctor.role != Role.DOCTOR:
        return Patient.objects.none()
    related = Q(id__in=care.patients_in_care(doctor).values("id")) | Q(psych_alerts__escalated_to=doctor)
    ids = Patient.objects.filter(related).values("id")
    return Patient.objects.filter(is_active=True, id__in=ids).order_by("id")


def doctor_may_see(doctor: User, patient_id: int) -> bool:
    if doctor.role != Role.DOCTOR:
        return False
    if doctor_patients(doctor).filter(pk=patient_id).exists():
        return True
    return Assignment.objects.filter(assigned_by=doctor, patient_id=patient_id, patient__is_active=True).exists()


def doctor_may_assign(doctor: User, patient_id: int) -> bool:
    """Assigning needs a care relationship that holds now (apps.care_team)."""
    return doctor.role == Role.DOCTOR and care.in_care(doctor, patient_id)


def shared_conversation(doctor: User, owner: User) -> Conversation | None:
    """The most recently active open conversation of the two, if any."""
    return (
        Conversation.objects.filter(
            closed_at__isnull=True, kind__in=[Conversation.Kind.VISIT, Conversation.Kind.CARE_TEAM]
        )
        .filter(members__user=doctor, members__left_at__isnull=True)
        .filter(members__user=owner, members__left_at__isnull=True)
        .order_by("-last_message_at", "-id")
        .first()
    )


def may_see_patient(user: User, patient: Patient) -> bool:
    if user.role == Role.PATIENT:
        return patient.owner_id == user.pk and patient.is_active
    if user.role == Role.DOCTOR:
        return doctor_may_see(user, patient.pk)
    return False


def _denied(user: User, object_type: str, object_id: Any) -> NotFound:
    audit_record(
        action="psych.access_denied", actor=user, object_type=object_type, object_id=object_id, result="denied"
    )
    return NotFound("记录")


def assignment_visible(user: User, assignment_id: int) -> Assignment:
    """The assignment if the user may see it; otherwise 404 (audited), the same
    answer whether it exists or not."""
    a = Assignment.objects.select_related("patient", "scale", "assigned_by").filter(pk=assignment_id).first()
    if a is None or not may_see_patient(user, a.patient):
        raise _denied(user, "psych_assignment", assignment_id)
    return a


def result_visible(user: User, result_id: int) -> Result:
    r = Result.objects.select_related("patient", "scale", "assignment__assigned_by").filter(pk=result_id).first()
    if r is None or not may_see_patient(user, r.patient):
        raise _denied(user, "psych_result", result_id)
    return r


def alert_visible(user: User, alert_id: int) -> Alert:
    """Alerts belong to the assigning doctor and, after escalation, to the
    on-duty doctor it went to."""
    alert = Alert.objects.select_related("patient", "result").filter(pk=alert_id).first()
    if alert is None or user.role != Role.DOCTOR or user.pk not in (alert.doctor_id, alert.escalated_to_id):
        raise _denied(user, "psych_alert", alert_id)
    return alert


def assignments_query(user: User, *, patient_id: int | None = None, status: str = "") -> QuerySet[Assignment]:
    qs = Assignment.objects.select_related("patient", "scale", "assigned_by").order_by("-created_at", "-id")
    if user.role == Role.PATIENT:
        qs = qs.filter(patient__owner=user, patient__is_active=True)
    elif user.role == Role.DOCTOR:
        qs = qs.filter(Q(patient__in=doctor_patients(user)) | Q(assigned_by=user, patient__is_active=True))
    else:
        return qs.none()
    if patient_id is not None:
        qs = qs.filter(patient_id=patient_id)
    if status:
        qs = qs.filter(status=status)
    return qs


def latest_scales() -> list[ScaleDefinition]:
    rows = ScaleDefinition.objects.filter(is_active=True).order_by("code", "-version")
    seen: dict[str, ScaleDefinition] = {}
    for row in rows:
        seen.setdefault(row.code, row)
    return sorted(seen.values(), key=lambda s: s.code)


def latest_scale(code: str) -> ScaleDefinition | None:
    return ScaleDefinition.objects.filter(code=code, is_active=True).order_by("-version").first()


# --- shaping -----------------------------------------------------------------------
# Times are returned in UTC whatever offset they were written with (a due time
# given as +08:00 comes back in UTC on create and on read alike).


def _utc(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat()


def _utc_or_none(t: dt.datetime | None) -> str | None:
    return _utc(t) if t is not None else None


def patient_brief(patient: Patient) -> dict[str, Any]:
    return {
        "id": patient.pk,
        "name": patient.name,
        "sex": patient.sex,
        "sex_label": Patient.Sex(patient.sex).label if patient.sex else "",
        "age": age_of(patient),
        "relation_label": Patient.Relation(patient.relation).label,
    }


def scale_brief(scale: ScaleDefinition) -> dict[str, Any]:
    d = scale.data
    return {
        "code": scale.code,
        "version": scale.version,
        "name": d["name"],
        "short_name": d["short_name"],
        "domain": d.get("domain", ""),
        "time_frame": d["time_frame"],
        "item_count": len(d["items"]),
    }


def scale_full(scale: ScaleDefinition) -> dict[str, Any]:
    d = scale.data
    return {
        **scale_brief(scale),
        "instructions": d["instructions"],
        "licence": d["licence"],
        "source": d.get("source", ""),
        "items": [
            {
                "no": it["no"],
                "text": it["text"],
                "options": [{"label": o["label"], "value": o["value"]} for o in it["options"]],
            }
            for it in d["items"]
        ],
    }


def is_overdue(a: Assignment) -> bool:
    return a.status in (Assignment.Status.ASSIGNED, Assignment.Status.IN_PROGRESS) and a.due_at < timezone.now()


def assignment_row(a: Assignment) -> dict[str, Any]:
    result = getattr(a, "result", None) if a.status == Assignment.Status.SUBMITTED else None
    return {
        "id": a.pk,
        "batch": a.batch,
        "patient": patient_brief(a.patient),
        "scale": scale_brief(a.scale),
        "status": a.status,
        "status_label": Assignment.Status(a.status).label,
        "overdue": is_overdue(a),
        "due_at": _utc(a.due_at),
        "note": a.note,
        "assigned_by": {"id": a.assigned_by_id, "name": a.assigned_by.display_name},
        "created_at": _utc(a.created_at),
        "submitted_at": _utc_or_none(a.submitted_at),
        "answered": len(a.draft_answers or {}),
        "result_id": result.pk if result else None,
        "band": result.band_code if result else "",
        "band_label": result.band_label if result else "",
        "band_severity": result.band_severity if result else None,
        "standard_score": result.standard_score if result else None,
        "critical": critical_items(result) if result else [],
    }


def assignment_for_filling(a: Assignment) -> dict[str, Any]:
    """What the patient app needs to (re)start filling: the exact version's
    items and the answers saved so far."""
    answers = {int(k): v for k, v in (a.draft_answers or {}).items()}
    total = len(a.scale.data["items"])
    first_open = next((n for n in range(1, total + 1) if n not in answers), None)
    return {
        **assignment_row(a),
        "definition": scale_full(a.scale),
        "answers": {str(k): v for k, v in sorted(answers.items())},
        "next_item": first_open,
    }


def _band_table(result: Result) -> list[dict[str, Any]]:
    bands = result.scale.data["norms"][result.norm]["bands"]
    return [
        {"code": b["code"], "min": b["min"], "max": b["max"], "label": b["label"], "severity": b["severity"]}
        for b in bands
    ]


def critical_items(result: Result, *, clinical: bool = True) -> list[dict[str, Any]]:
    """The one ``critical`` shape of every response: the critical items that
    fired (code, item, value, label, action), [] when none. ``action`` is the
    instruction to the clinician: empty in what the patient reads."""
    return [
        {
            "code": c["code"],
            "item": c["item"],
            "value": c["value"],
            "label": c["label"],
            "action": c.get("action", "") if clinical else "",
        }
        for c in result.critical
    ]


def _score_range(result: Result) -> list[int]:
    bands = result.scale.data["norms"][result.norm]["bands"]
    return [min(b["min"] for b in bands), max(b["max"] for b in bands)]


def _band_advice(result: Result) -> str:
    bands = result.scale.data["norms"][result.norm]["bands"]
    return next((b["advice"] for b in bands if b["code"] == result.band_code), "")


def review_view(result: Result) -> dict[str, Any] | None:
    review = getattr(result, "review", None)
    if review is None:
        return None
    return {
        "note": review.note,
        "signed_by": {"id": review.signed_by_id, "name": review.signed_by.display_name},
        "signed_at": _utc(review.signed_at),
        "signature_valid": review_signature_valid(result, review.note, review.signed_by_id, review.signature),
    }


def result_summary(r: Result) -> dict[str, Any]:
    return {
        "result_id": r.pk,
        "assignment_id": r.assignment_id,
        "submitted_at": _utc(r.submitted_at),
        "raw_score": r.raw_score,
        "standard_score": r.standard_score,
        "band": r.band_code,
        "band_label": r.band_label,
        "band_severity": r.band_severity,
        "norm_label": r.norm_label,
        "critical": critical_items(r),
    }


def trend(patient_id: int, scale_code: str, *, until: dt.datetime | None = None) -> list[dict[str, Any]]:
    qs = Result.objects.filter(patient_id=patient_id, scale_code=scale_code).order_by("submitted_at", "id")
    if until is not None:
        qs = qs.filter(submitted_at__lte=until)
    return [result_summary(r) for r in qs]


def patient_report(result: Result) -> dict[str, Any]:
    scale = result.scale.data
    return {
        "result_id": result.pk,
        "assignment_id": result.assignment_id,
        "patient": patient_brief(result.patient),
        "scale": scale_brief(result.scale),
        "submitted_at": _utc(result.submitted_at),
        "raw_score": result.raw_score,
        "standard_score": result.standard_score,
        "uses_standard_score": scale["scoring"]["multiplier"] != "1",
        "score_range": _score_range(result),
        "band": result.band_code,
        "band_label": result.band_label,
        "band_severity": result.band_severity,
        "advice": _band_advice(result),
        "norm_label": result.norm_label,
        "flags": [f["label"] for f in result.flags],
        "critical": critical_items(result, clinical=False),
        "needs_help": bool(result.critical),
        "help_text": HELP_TEXT if result.critical else "",
        "disclaimer": DISCLAIMER,
        "review": review_view(result),
        "trend": trend(result.patient_id, result.scale_code, until=result.submitted_at),
    }


def clinical_report(result: Result) -> dict[str, Any]:
    scale = result.scale.data
    critical_nos = {c["item"] for c in result.critical}
    items = []
    for it in scale["items"]:
        value = result.answers.get(str(it["no"]))
        label = next((o["label"] for o in it["options"] if o["value"] == value), "")
        items.append(
            {
                "no": it["no"],
                "text": it["text"],
                "value": value,
                "answer": label,
                "critical": it["no"] in critical_nos,
            }
        )
    a = result.assignment
    alerts = [alert_row(al) for al in result.alerts.select_related("patient", "result__scale").order_by("id")]
    return {
        **patient_report(result),
        "critical": critical_items(result),
        "assignment": {
            "id": a.pk,
            "assigned_by": {"id": a.assigned_by_id, "name": a.assigned_by.display_name},
            "created_at": _utc(a.created_at),
            "due_at": _utc(a.due_at),
        },
        "scale_version": result.scale.version,
        "time_frame": scale["time_frame"],
        "rounding": result.rounding,
        "rounding_label": ROUNDING_LABELS.get(result.rounding, result.rounding),
        "multiplier": scale["scoring"]["multiplier"],
        "items": items,
        "bands": _band_table(result),
        "alerts": alerts,
        "licence": scale["licence"],
        # The whole history for the chart, not only up to this result.
        "trend": trend(result.patient_id, result.scale_code),
    }


def alert_row(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.pk,
        "status": alert.status,
        "status_label": Alert.Status(alert.status).label,
        "patient": patient_brief(alert.patient),
        "scale_code": alert.result.scale_code,
        "result_id": alert.result_id,
        "assignment_id": alert.result.assignment_id,
        "rule_code": alert.rule_code,
        "item": alert.item,
        "value": alert.value,
        "label": alert.label,
        "doctor_id": alert.doctor_id,
        "escalated_to_id": alert.escalated_to_id,
        "escalated_at": _utc_or_none(alert.escalated_at),
        "acknowledged_by_id": alert.acknowledged_by_id,
        "acknowledged_at": _utc_or_none(alert.acknowledged_at),
        "ack_deadline": _utc(alert.ack_deadline),
        "created_at": _utc(alert.created_at),
    }


def alert_detail(alert: Alert) -> dict[str, Any]:
    events = alert.events.select_related("actor").order_by("at", "id")
    return {
        **alert_row(alert),
        "events": [
            {
                "action": e.action,
                "action_label": e.get_action_display(),
                "actor": e.actor.display_name if e.actor else "系统",
                "at": _utc(e.at),
                "note": e.note,
            }
            for e in events
        ],
    }


def alerts_query(user: User, *, status: str = "") -> QuerySet[Alert]:
    if user.role != Role.DOCTOR:
        return Alert.objects.none()
    qs = (
        Alert.objects.select_related("patient", "result")
        .filter(Q(doctor=user) | Q(escalated_to=user))
        .order_by("-created_at", "-id")
    )
    if status == "active":
        qs = qs.filter(status__in=[Alert.Status.OPEN, Alert.Status.ESCALATED])
    elif status:
        qs = qs.filter(status=status)
    return qs
