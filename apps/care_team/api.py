"""/api/v1/care/: take a patient into care from a conversation, list and end
one's care relationships, and ask why one holds a 就诊人 in care.

Clinical roles only; every object is checked against the caller (a
relationship is reachable by its staff member and the person who recorded it)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router, Status

from apps.accounts.models import Patient, User
from apps.accounts.roles import CLINICAL_ROLES
from apps.accounts.selectors import age_of
from apps.audit.services import audit_record
from hub import crypto
from hub.auth import require_roles
from hub.errors import HubCode, errors

from . import selectors, services
from .errors import CareCode, CareError
from .models import CareRelationship
from .schemas import (
    ConversationPatientsOut,
    EndIn,
    PatientCareOut,
    PatientSearchOut,
    RelationshipListOut,
    RelationshipOut,
    TakeIntoCareIn,
)

router = Router()
PAGE_MAX = 100


def _patient_out(p: Patient) -> dict[str, Any]:
    return {"id": p.pk, "name": p.name, "relation_label": Patient.Relation(p.relation).label}


def relationship_out(rel: CareRelationship) -> dict[str, Any]:
    return {
        "id": rel.pk,
        "staff": {"id": rel.staff_id, "name": rel.staff.display_name},
        "patient": _patient_out(rel.patient),
        "reason": rel.reason,
        "reason_label": CareRelationship.Reason(rel.reason).label,
        "source_type": rel.source_type,
        "source_id": rel.source_id,
        "department": rel.department,
        "note": rel.note,
        "starts_at": rel.starts_at,
        "until": rel.until,
        "active": selectors.is_open(rel),
        "ended_at": rel.ended_at,
        "ended_by": {"id": rel.ended_by.pk, "name": rel.ended_by.display_name} if rel.ended_by else None,
        "end_note": rel.end_note,
        "created_at": rel.created_at,
    }


def _staff(request: HttpRequest) -> User:
    user: User = require_roles(request, CLINICAL_ROLES)
    return user


@router.post(
    "/relationships",
    response={
        201: RelationshipOut,
        200: RelationshipOut,
        **errors(
            HubCode.FORBIDDEN,
            CareCode.NOT_CLINICAL_STAFF,
            CareCode.CONVERSATION_NOT_FOUND,
            CareCode.CONVERSATION_CLOSED,
            CareCode.PATIENT_NOT_IN_CONVERSATION,
            CareCode.PATIENT_REQUIRED,
            CareCode.UNTIL_INVALID,
            HubCode.VALIDATION_ERROR,
        ),
    },
    summary="从会话接诊（建立诊疗关系）",
)
def take_into_care(request: HttpRequest, payload: TakeIntoCareIn) -> Status[dict[str, Any]]:
    staff = _staff(request)
    rel, created = services.take_into_care(
        actor=staff,
        conversation_id=payload.conversation_id,
        patient_id=payload.patient_id,
        until=payload.until,
        note=payload.note,
    )
    return Status(201 if created else 200, relationship_out(rel))


@router.get(
    "/relationships",
    response={200: RelationshipListOut, **errors(HubCode.FORBIDDEN, HubCode.VALIDATION_ERROR)},
    summary="我的诊疗关系",
)
def relationship_list(
    request: HttpRequest, patient_id: int | None = None, include_ended: bool = False, limit: int = 50, offset: int = 0
) -> dict[str, Any]:
    staff = _staff(request)
    qs = selectors.relationships_of(staff, patient_id=patient_id, include_ended=include_ended)
    limit, offset = max(1, min(limit, PAGE_MAX)), max(0, offset)
    return {"items": [relationship_out(r) for r in qs[offset : offset + limit]], "count": qs.count()}


@router.post(
    "/relationships/{relationship_id}/end",
    response={
        200: RelationshipOut,
        **errors(HubCode.FORBIDDEN, CareCode.RELATIONSHIP_NOT_FOUND, CareCode.ALREADY_ENDED, HubCode.VALIDATION_ERROR),
    },
    summary="结束诊疗关系",
)
def relationship_end(request: HttpRequest, relationship_id: int, payload: EndIn) -> dict[str, Any]:
    staff = _staff(request)
    return relationship_out(services.relationship_end(actor=staff, relationship_id=relationship_id, note=payload.note))


@router.get(
    "/conversations/{conversation_id}/patients",
    response={
        200: ConversationPatientsOut,
        **errors(HubCode.FORBIDDEN, CareCode.CONVERSATION_NOT_FOUND, HubCode.VALIDATION_ERROR),
    },
    summary="会话中可接诊的就诊人（含是否已接诊）",
)
def conversation_patients(request: HttpRequest, conversation_id: int) -> dict[str, Any]:
    staff = _staff(request)
    rows = services.conversation_patients(actor=staff, conversation_id=conversation_id)
    recorded = {
        r.patient_id: r
        for r in selectors.open_relationships().filter(
            staff=staff, patient__in=rows, source_type="im_conversation", source_id=str(conversation_id)
        )
    }
    return {
        "items": [
            {
                **_patient_out(p),
                "sex_label": Patient.Sex(p.sex).label,
                "age": age_of(p),
                "relationship": relationship_out(recorded[p.pk]) if p.pk in recorded else None,
            }
            for p in rows
        ]
    }


@router.get(
    "/patients/{patient_id}",
    response={
        200: PatientCareOut,
        **errors(HubCode.FORBIDDEN, CareCode.RELATIONSHIP_NOT_FOUND, HubCode.VALIDATION_ERROR),
    },
    summary="我与该就诊人的诊疗关系（原因与期限）",
)
def patient_care(request: HttpRequest, patient_id: int) -> dict[str, Any]:
    staff = _staff(request)
    patient = Patient.objects.filter(pk=patient_id, is_active=True).first()
    reasons = selectors.care_reasons(staff, patient) if patient is not None else []
    if patient is None or not reasons:
        # Not in care: the same answer whether the 就诊人 exists or not.
        audit_record(
            action="care.access_denied", actor=staff, object_type="patient", object_id=patient_id, result="denied"
        )
        raise CareError(CareCode.RELATIONSHIP_NOT_FOUND)
    audit_record(action="care.patient_view", actor=staff, object_type="patient", object_id=patient.pk)
    return {
        "patient": _patient_out(patient),
        "in_care": True,
        "reasons": reasons,
        "profile": profile_out(patient, reasons),
    }


def profile_out(p: Patient, reasons: list[dict[str, Any]]) -> dict[str, Any]:
    """Identifiers masked for every clinical role (the console never needs them whole)."""
    phone = p.phone or (p.owner.phone if p.owner_id else "")
    return {
        "id": p.pk,
        "name": p.name,
        "relation_label": Patient.Relation(p.relation).label,
        "sex_label": Patient.Sex(p.sex).label,
        "age": age_of(p),
        "birth_date": p.birth_date,
        "phone_masked": crypto.mask_phone(phone) if phone else "",
        "id_number_masked": crypto.mask_id_number(p.id_number),
        "account_name": p.owner.display_name,
        "reasons": sorted({r["reason_label"] for r in reasons}),
    }


SEARCH_LIMIT = 20


@router.get(
    "/patients",
    response={200: PatientSearchOut, **errors(HubCode.FORBIDDEN, HubCode.VALIDATION_ERROR)},
    summary="查找我诊疗关系内的就诊人（姓名、手机或证件号后四位）",
)
def patient_search(request: HttpRequest, q: str = "") -> dict[str, Any]:
    staff = _staff(request)
    q = q.strip()[:32]
    rows = selectors.search_patients_in_care(staff, q, limit=SEARCH_LIMIT + 1)
    # The query itself may be digits of a phone or ID number: only its kind and length are kept.
    audit_record(
        action="care.patient_search",
        actor=staff,
        detail={
            "query_kind": "tail" if q[:-1].isdigit() and len(q) >= 4 else ("name" if q else "all"),
            "query_length": len(q),
            "results": min(len(rows), SEARCH_LIMIT),
        },
    )
    items = [profile_out(p, selectors.care_reasons(staff, p)) for p in rows[:SEARCH_LIMIT]]
    return {"items": items, "count": len(items), "truncated": len(rows) > SEARCH_LIMIT}
