"""The one answer to "which staff may see which 就诊人, why and until when".

Psych uses it for "the doctor's patients"; IM and media can ask the same
question (``in_care``, ``staff_in_care_of``) instead of growing their own rule.

A staff member holds a 就诊人 in care when either

- a recorded ``CareRelationship`` is open: not ended, started, and ``until``
  not yet reached (reasons: conversation, visit, care plan, department duty); or
- live, while it lasts: the staff member and the 就诊人's account are both
  current members of an open visit or care-team conversation, the staff member
  as clinical staff (``Member.Role.STAFF``). A live relationship covers every
  active 就诊人 the account manages and ends when the conversation closes or
  either side leaves; taking the patient into care records it beyond that.

Only active clinical accounts (``CLINICAL_ROLES``) hold anyone in care. This
module reads IM models only; it imports no other app's logic."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.accounts.models import Patient, User
from apps.accounts.roles import CLINICAL_ROLES, Role
from apps.im.models import Conversation, Member

from .models import CareRelationship

CARE_CONVERSATION_KINDS = (Conversation.Kind.VISIT, Conversation.Kind.CARE_TEAM)


def holds_care(staff: User) -> bool:
    return bool(staff.is_active and staff.role in CLINICAL_ROLES)


def open_relationships(*, at: dt.datetime | None = None) -> QuerySet[CareRelationship]:
    """Recorded relationships that grant access at ``at`` (default now)."""
    at = at or timezone.now()
    return CareRelationship.objects.filter(ended_at__isnull=True, starts_at__lte=at, until__gt=at)


def care_conversations(staff: User) -> QuerySet[Conversation]:
    """Open visit / care-team conversations the staff member is clinical staff of."""
    return Conversation.objects.filter(
        closed_at__isnull=True,
        kind__in=CARE_CONVERSATION_KINDS,
        members__user=staff,
        members__role=Member.Role.STAFF,
        members__left_at__isnull=True,
    )


def _live_owner_ids(staff: User) -> Any:
    return Member.objects.filter(
        conversation__in=care_conversations(staff).values("id"),
        left_at__isnull=True,
        role=Member.Role.PATIENT,
        user__role=Role.PATIENT,
    ).values("user_id")


def patients_in_care(staff: User, *, at: dt.datetime | None = None) -> QuerySet[Patient]:
    """Active 就诊人 the staff member holds in care at ``at`` (live conversation
    relationships are evaluated as of now)."""
    if not holds_care(staff):
        return Patient.objects.none()
    recorded = open_relationships(at=at).filter(staff=staff).values("patient_id")
    ids = Patient.objects.filter(Q(owner_id__in=_live_owner_ids(staff)) | Q(id__in=recorded)).values("id")
    return Patient.objects.filter(is_active=True, id__in=ids).order_by("id")


def in_care(staff: User, patient_id: int, *, at: dt.datetime | None = None) -> bool:
    return patients_in_care(staff, at=at).filter(pk=patient_id).exists()


def staff_in_care_of(patient: Patient, *, at: dt.datetime | None = None) -> QuerySet[User]:
    """Every clinical account holding this 就诊人 in care (for IM / media)."""
    if not patient.is_active:
        return User.objects.none()
    recorded = open_relationships(at=at).filter(patient=patient).values("staff_id")
    live = Member.objects.filter(
        conversation__closed_at__isnull=True,
        conversation__kind__in=CARE_CONVERSATION_KINDS,
        conversation__members__user_id=patient.owner_id,
        conversation__members__role=Member.Role.PATIENT,
        conversation__members__left_at__isnull=True,
        role=Member.Role.STAFF,
        left_at__isnull=True,
    ).values("user_id")
    return User.objects.filter(Q(id__in=recorded) | Q(id__in=live), is_active=True, role__in=CLINICAL_ROLES).order_by(
        "id"
    )


def care_reasons(staff: User, patient: Patient, *, at: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Why the staff member holds the 就诊人 in care, one entry per reason."""
    if not holds_care(staff) or not patient.is_active:
        return []
    reasons: list[dict[str, Any]] = [
        {
            "reason": r.reason,
            "reason_label": CareRelationship.Reason(r.reason).label,
            "relationship_id": r.pk,
            "source_type": r.source_type,
            "source_id": r.source_id,
            "until": r.until,
        }
        for r in open_relationships(at=at).filter(staff=staff, patient=patient).order_by("until", "id")
    ]
    live = care_conversations(staff).filter(
        members__user_id=patient.owner_id, members__role=Member.Role.PATIENT, members__left_at__isnull=True
    )
    for conv_id in live.values_list("id", flat=True).distinct().order_by("id"):
        reasons.append(
            {
                "reason": CareRelationship.Reason.CONVERSATION.value,
                "reason_label": "会话成员",
                "relationship_id": None,
                "source_type": "im_conversation",
                "source_id": str(conv_id),
                "until": None,
            }
        )
    return reasons


def relationships_of(
    staff: User, *, patient_id: int | None = None, include_ended: bool = False
) -> QuerySet[CareRelationship]:
    """The staff member's recorded relationships (open ones unless ``include_ended``)."""
    qs = CareRelationship.objects.select_related("patient", "staff", "ended_by").filter(staff=staff)
    if not include_ended:
        qs = qs.filter(pk__in=open_relationships().values("id"))
    if patient_id is not None:
        qs = qs.filter(patient_id=patient_id)
    return qs.order_by("-created_at", "-id")


def is_open(rel: CareRelationship, *, at: dt.datetime | None = None) -> bool:
    at = at or timezone.now()
    return rel.ended_at is None and rel.starts_at <= at < rel.until


# --- patient search (console 患者查询) -------------------------------------------------

SEARCH_SCAN_MAX = 5000  # 就诊人 in one staff member's care; identifiers are decrypted to match tails


def search_patients_in_care(staff: User, q: str, *, limit: int = 20) -> list[Patient]:
    """就诊人 in ``staff``'s care matching ``q``: a name fragment, or four or more
    trailing digits (X allowed) of the 就诊人's or the account's phone or of the ID
    number. Only patients already in care are ever read, so a search cannot find
    anyone the caller may not see; identifiers are encrypted, so tails are matched
    after decryption within that bounded set."""
    q = q.strip()
    pool = patients_in_care(staff).select_related("owner")
    if not q:
        return list(pool[:limit])
    tail = q.upper()
    if len(tail) >= 4 and tail[:-1].isdigit() and (tail[-1].isdigit() or tail[-1] == "X"):
        hits: list[Patient] = []
        for p in pool[:SEARCH_SCAN_MAX]:
            phones = (p.phone, p.owner.phone if p.owner_id else "")
            if any(ph and ph.endswith(tail) for ph in phones) or p.id_number.upper().endswith(tail):
                hits.append(p)
                if len(hits) >= limit:
                    break
        return hits
    return list(pool.filter(name__icontains=q)[:limit])
