"""Writes of care relationships: record one (from a conversation, or for other
apps: visits, care plans, duty) and end one. Every create and end is audited;
refusals are audited outside any transaction and write nothing else."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from apps.accounts.models import Patient, User
from apps.accounts.roles import Role
from apps.audit.services import audit_record
from apps.im.models import Conversation, Member

from . import selectors
from .errors import CareCode, CareError
from .models import CareRelationship

MAX_DAYS = 365
# How long a relationship lasts when the caller gives no ``until``.
DEFAULT_DAYS = {
    CareRelationship.Reason.CONVERSATION: 90,
    CareRelationship.Reason.VISIT: 30,
    CareRelationship.Reason.CARE_PLAN: 365,
    CareRelationship.Reason.DUTY: 1,
}


def _check_until(until: dt.datetime | None, reason: str, now: dt.datetime) -> dt.datetime:
    if until is None:
        return now + dt.timedelta(days=DEFAULT_DAYS[CareRelationship.Reason(reason)])
    if timezone.is_naive(until):
        until = timezone.make_aware(until)
    if until <= now or until > now + dt.timedelta(days=MAX_DAYS):
        raise CareError(CareCode.UNTIL_INVALID, max_days=MAX_DAYS)
    return until


def relationship_open(
    *,
    staff: User,
    patient: Patient,
    reason: str,
    until: dt.datetime | None = None,
    source_type: str = "",
    source_id: str = "",
    department: str = "",
    note: str = "",
    created_by: User | None = None,
) -> tuple[CareRelationship, bool]:
    """Record that ``staff`` holds ``patient`` in care for ``reason`` until
    ``until`` (default by reason). Returns ``(relationship, created)``: an open
    relationship for the same source is returned unchanged. Callers check who
    may ask; this checks only that the staff member may hold anyone in care."""
    if not selectors.holds_care(staff):
        raise CareError(CareCode.NOT_CLINICAL_STAFF)
    now = timezone.now()
    until = _check_until(until, reason, now)
    key = {"staff": staff, "patient": patient, "reason": reason, "source_type": source_type, "source_id": source_id}
    with transaction.atomic():
        # Serialise takers of the same patient; the partial unique index settles it.
        Patient.objects.select_for_update().filter(pk=patient.pk).first()
        existing = CareRelationship.objects.select_for_update().filter(ended_at__isnull=True, **key).first()
        if existing is not None:
            if selectors.is_open(existing, at=now):
                return existing, False
            # Lapsed but never ended: close it at its own ``until`` so a new one can open.
            existing.ended_at = min(existing.until, now)
            existing.end_note = "已到期"
            existing.save(update_fields=["ended_at", "end_note"])
        rel = CareRelationship.objects.create(
            **key,
            department=department[:64],
            note=note[:200],
            starts_at=now,
            until=until,
            created_by=created_by,
            created_at=now,
        )
        audit_record(
            action="care.relationship_create",
            actor=created_by,
            actor_username="" if created_by else "system",
            object_type="care_relationship",
            object_id=rel.pk,
            detail={
                "staff": staff.pk,
                "patient": patient.pk,
                "reason": reason,
                "source": f"{source_type}:{source_id}" if source_type else "",
                "until": until.isoformat(),
            },
        )
    return rel, True


def _denied(
    actor: User, object_type: str, object_id: object, why: str, *, action: str = "care.relationship_create"
) -> None:
    audit_record(
        action=action,
        actor=actor,
        object_type=object_type,
        object_id=object_id,
        result="denied",
        detail={"why": why},
    )


def _care_conversation(actor: User, conversation_id: int, *, action: str) -> tuple[Conversation, QuerySet[Patient]]:
    """The visit / care-team conversation the actor is current clinical staff
    of, and the active 就诊人 of its current patient accounts. Anything else is
    refused (audited) with the same answer whether the conversation exists."""
    if not selectors.holds_care(actor):
        _denied(actor, "im_conversation", conversation_id, "not_clinical", action=action)
        raise CareError(CareCode.NOT_CLINICAL_STAFF)
    conv = Conversation.objects.filter(pk=conversation_id, kind__in=selectors.CARE_CONVERSATION_KINDS).first()
    is_staff_member = (
        conv is not None
        and Member.objects.filter(conversation=conv, user=actor, role=Member.Role.STAFF, left_at__isnull=True).exists()
    )
    if conv is None or not is_staff_member:
        _denied(actor, "im_conversation", conversation_id, "not_member", action=action)
        raise CareError(CareCode.CONVERSATION_NOT_FOUND)
    owners = Member.objects.filter(
        conversation=conv, role=Member.Role.PATIENT, left_at__isnull=True, user__role=Role.PATIENT
    ).values("user_id")
    return conv, Patient.objects.filter(owner_id__in=owners, is_active=True).order_by("id")


def conversation_patients(*, actor: User, conversation_id: int) -> list[Patient]:
    """The 就诊人 a clinical staff member could take into care from this conversation."""
    _, candidates = _care_conversation(actor, conversation_id, action="care.access_denied")
    return list(candidates)


def take_into_care(
    *,
    actor: User,
    conversation_id: int,
    patient_id: int | None = None,
    until: dt.datetime | None = None,
    note: str = "",
) -> tuple[CareRelationship, bool]:
    """A clinical staff member of a visit or care-team conversation takes one of
    the 就诊人 of that conversation's patient account into care (reason
    ``conversation``). Without ``patient_id`` the account's only 就诊人, or its
    own (本人) one, is meant."""
    conv, candidates = _care_conversation(actor, conversation_id, action="care.relationship_create")
    if conv.closed_at is not None:
        _denied(actor, "im_conversation", conversation_id, "closed")
        raise CareError(CareCode.CONVERSATION_CLOSED)
    if patient_id is not None:
        patient = candidates.filter(pk=patient_id).first()
        if patient is None:
            _denied(actor, "patient", patient_id, "not_in_conversation")
            raise CareError(CareCode.PATIENT_NOT_IN_CONVERSATION)
    else:
        rows = list(candidates)
        selves = [p for p in rows if p.relation == Patient.Relation.SELF]
        if len(rows) == 1:
            patient = rows[0]
        elif len(selves) == 1:
            patient = selves[0]
        else:
            raise CareError(CareCode.PATIENT_REQUIRED, patient_ids=[p.pk for p in rows])
    return relationship_open(
        staff=actor,
        patient=patient,
        reason=CareRelationship.Reason.CONVERSATION,
        until=until,
        source_type="im_conversation",
        source_id=str(conv.pk),
        note=note,
        created_by=actor,
    )


def relationship_end(*, actor: User, relationship_id: int, note: str = "") -> CareRelationship:
    """End a recorded relationship: the staff member it grants access to, or the
    person who recorded it, may end it. Access stops at once."""
    rel = CareRelationship.objects.filter(pk=relationship_id).first()
    if rel is None or actor.pk not in (rel.staff_id, rel.created_by_id):
        audit_record(
            action="care.relationship_end",
            actor=actor,
            object_type="care_relationship",
            object_id=relationship_id,
            result="denied",
        )
        raise CareError(CareCode.RELATIONSHIP_NOT_FOUND)
    with transaction.atomic():
        rel = CareRelationship.objects.select_for_update().select_related("patient", "staff").get(pk=relationship_id)
        if rel.ended_at is not None:
            raise CareError(CareCode.ALREADY_ENDED)
        now = timezone.now()
        rel.ended_at = now
        rel.ended_by = actor
        rel.end_note = note[:200]
        rel.save(update_fields=["ended_at", "ended_by", "end_note"])
        audit_record(
            action="care.relationship_end",
            actor=actor,
            object_type="care_relationship",
            object_id=rel.pk,
            detail={"staff": rel.staff_id, "patient": rel.patient_id, "reason": rel.reason},
        )
    return rel
