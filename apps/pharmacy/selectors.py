"""Reads of the pharmacy domain, who may see what, and the gating questions
other apps ask (commerce at checkout, delivery before shipping).

Who sees a prescription:

- the doctor who wrote it (``Prescription.doctor``); writing one for a 就诊人
  needs a care relationship now (``apps.care_team.selectors.in_care``);
- pharmacists (the review duty of the pharmacy department): every prescription
  that has been submitted for review, with the patient context they review
  against; never a draft;
- the patient account that manages the 就诊人, from signing on, without the
  internal notes (the note to the pharmacist, the review note, the reject
  reason) and with identifiers masked.

Anything else answers the same 404 whether the prescription exists or not,
audited as ``pharmacy.access_denied``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.accounts.models import Patient, StaffProfile, User
from apps.accounts.roles import Role
from apps.accounts.selectors import age_of
from apps.audit.services import audit_record
from apps.care_team import selectors as care
from hub import crypto
from hub.errors import NotFound

from .allergies import Allergy, allergies_of
from .models import Drug, Frequency, Prescription, PrescriptionLine, Route
from .rules import plain_number
from .signing import signature_valid

S = Prescription.Status
# Statuses a pharmacist may see: everything that was ever submitted for review.
PHARMACIST_VISIBLE = Q(submitted_at__isnull=False)


def yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


# --- gating (for commerce and delivery; see docs/adr/0042-prescriptions.md) ---------------


def prescription_can_be_paid(prescription_id: int, *, now: dt.datetime | None = None) -> bool:
    """True only for a prescription a pharmacist approved, still within its
    validity, whose doctor's signature verifies over its current content (R6).
    Commerce calls this before creating a charge for a prescription item."""
    p = Prescription.objects.select_related("patient", "doctor").filter(pk=prescription_id).first()
    if p is None or p.status != S.APPROVED:
        return False
    if p.expires_at is None or p.expires_at <= (now or timezone.now()):
        return False
    return signature_valid(p)


def prescription_can_be_dispensed(prescription_id: int) -> bool:
    """True only for a paid prescription (so approved before) whose signature
    still verifies. The pharmacy dispenses and delivery ships only then."""
    p = Prescription.objects.select_related("patient", "doctor").filter(pk=prescription_id).first()
    return p is not None and p.status == S.PAID and signature_valid(p)


def prescription_can_be_shipped(prescription_id: int) -> bool:
    """Delivery (or pickup) needs the medicine dispensed against a valid prescription."""
    p = Prescription.objects.select_related("patient", "doctor").filter(pk=prescription_id).first()
    return p is not None and p.status == S.DISPENSED and signature_valid(p)


def prescription_charge(prescription_id: int) -> dict[str, Any] | None:
    """What commerce puts on the order for a prescription: one item per line
    (drug code, quantity, unit price and amount in fen) and the total. Names and
    diagnosis stay out (the order is not clinical). None for an unknown id."""
    p = Prescription.objects.filter(pk=prescription_id).first()
    if p is None:
        return None
    items = [
        {
            "position": ln.position,
            "drug_code": ln.drug_code,
            "quantity": plain_number(ln.quantity),
            "unit": ln.quantity_unit,
            "unit_price_amount": ln.unit_price_amount,
            "amount": int(ln.unit_price_amount * ln.quantity),
        }
        for ln in p.lines.order_by("position")
    ]
    return {
        "prescription_id": p.pk,
        "patient_id": p.patient_id,
        "version": p.version,
        "items": items,
        "total_amount": sum(i["amount"] for i in items),
    }


# --- catalogue ------------------------------------------------------------------------------


def drugs_search(*, q: str = "", category: str = "", include_unavailable: bool = False) -> QuerySet[Drug]:
    qs = Drug.objects.select_related("default_frequency", "default_route").filter(is_active=True)
    if category:
        qs = qs.filter(category=category)
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(generic_name__icontains=q) | Q(code__iexact=q))
    if not include_unavailable:
        qs = qs.filter(online_allowed=True, controlled_class=Drug.Controlled.NONE)
    return qs.order_by("category", "name", "id")


def drug_row(d: Drug) -> dict[str, Any]:
    return {
        "code": d.code,
        "name": d.name,
        "generic_name": d.generic_name,
        "category": d.category,
        "category_label": Drug.Category(d.category).label,
        "dosage_form": d.dosage_form,
        "specification": d.specification,
        "unit": d.unit,
        "dose_unit": d.dose_unit,
        "pack_dose": plain_number(d.pack_dose) if d.pack_dose is not None else None,
        "default_frequency": d.default_frequency.code if d.default_frequency else "",
        "default_route": d.default_route.code if d.default_route else "",
        "controlled_class": d.controlled_class,
        "controlled_label": Drug.Controlled(d.controlled_class).label,
        "tea_class": d.tea_class,
        "fsmp_class": d.fsmp_class,
        "registration_no": d.registration_no,
        "online_allowed": d.online_allowed,
        "tcm_pieces": d.is_tcm_pieces,
        "price_amount": d.price_amount,
        "price_yuan": yuan(d.price_amount),
        "stock": d.stock,
    }


def vocabularies() -> dict[str, Any]:
    return {
        "frequencies": [
            {"code": f.code, "label": f.label, "doses_per_period": f.doses_per_period, "period_days": f.period_days}
            for f in Frequency.objects.order_by("sort", "id")
        ],
        "routes": [{"code": r.code, "label": r.label} for r in Route.objects.order_by("sort", "id")],
        "categories": [{"code": c.value, "label": c.label} for c in Drug.Category],
        "guardian_relations": [{"code": r.value, "label": r.label} for r in Prescription.GuardianRelation if r.value],
    }


# --- who may see what -----------------------------------------------------------------------


def _denied(user: User, prescription_id: Any) -> NotFound:
    audit_record(
        action="pharmacy.access_denied",
        actor=user,
        object_type="prescription",
        object_id=prescription_id,
        result="denied",
    )
    return NotFound("处方")


def _base() -> QuerySet[Prescription]:
    return Prescription.objects.select_related("patient", "patient__owner", "doctor", "reviewed_by")


def visible_query(user: User) -> QuerySet[Prescription]:
    qs = _base()
    if user.role == Role.DOCTOR:
        return qs.filter(doctor=user)
    if user.role == Role.PHARMACIST and user.is_active:
        return qs.filter(PHARMACIST_VISIBLE)
    if user.role == Role.PATIENT:
        return qs.filter(patient__owner=user, patient__is_active=True).exclude(status=S.DRAFT)
    return qs.none()


def prescription_visible(user: User, prescription_id: int) -> Prescription:
    """The prescription if ``user`` may see it, else 404 (audited), the same
    answer whether it exists or not."""
    p = visible_query(user).filter(pk=prescription_id).first()
    if p is None:
        raise _denied(user, prescription_id)
    return p


def prescription_of_doctor(doctor: User, prescription_id: int) -> Prescription:
    """The doctor's own prescription (the only one they may change), else 404."""
    if doctor.role != Role.DOCTOR:
        raise _denied(doctor, prescription_id)
    p = _base().filter(pk=prescription_id, doctor=doctor).first()
    if p is None:
        raise _denied(doctor, prescription_id)
    return p


def may_prescribe(doctor: User, patient_id: int) -> bool:
    """A doctor prescribes only for a 就诊人 they hold in care now."""
    return doctor.role == Role.DOCTOR and doctor.is_active and care.in_care(doctor, patient_id)


def review_queue() -> QuerySet[Prescription]:
    """Submitted prescriptions, oldest first (first in, first reviewed)."""
    return _base().filter(status=S.SUBMITTED).order_by("submitted_at", "id")


def patient_for_allergies(user: User, patient_id: int) -> Patient:
    """Who may read / record a 就诊人's allergies: the managing account, clinical
    staff holding the 就诊人 in care, and pharmacists while a prescription of the
    就诊人 is in their review (the context they review against)."""
    patient = Patient.objects.filter(pk=patient_id, is_active=True).first()
    ok = False
    if patient is not None:
        if user.role == Role.PATIENT:
            ok = patient.owner_id == user.pk
        elif user.role == Role.PHARMACIST:
            ok = Prescription.objects.filter(patient=patient, status=S.SUBMITTED).exists() or care.in_care(
                user, patient.pk
            )
        else:
            ok = care.in_care(user, patient.pk)
    if patient is None or not ok:
        audit_record(
            action="pharmacy.access_denied", actor=user, object_type="patient", object_id=patient_id, result="denied"
        )
        raise NotFound("就诊人")
    return patient


# --- shapes -----------------------------------------------------------------------------------


def allergy_row(a: Allergy) -> dict[str, Any]:
    return {
        "id": a.record_id,
        "allergen": a.allergen,
        "reaction": a.reaction,
        "source": a.source,
        "source_label": a.source_label,
        "recorded_at": a.recorded_at,
    }


def _line_row(ln: PrescriptionLine) -> dict[str, Any]:
    return {
        "position": ln.position,
        "drug_code": ln.drug_code,
        "drug_name": ln.drug_name,
        "specification": ln.specification,
        "dose": plain_number(ln.dose),
        "dose_unit": ln.dose_unit,
        "frequency": ln.frequency.code,
        "frequency_label": ln.frequency.label,
        "route": ln.route.code,
        "route_label": ln.route.label,
        "days": ln.days,
        "quantity": plain_number(ln.quantity),
        "quantity_unit": ln.quantity_unit,
        "instructions": ln.instructions,
        "unit_price_amount": ln.unit_price_amount,
        "amount": int(ln.unit_price_amount * ln.quantity),
        "entered_by": ln.entered_by_id,
        "entered_at": ln.entered_at,
    }


def _doctor_brief(user: User) -> dict[str, Any]:
    profile = StaffProfile.objects.filter(user=user).first()
    return {
        "id": user.pk,
        "name": user.display_name,
        "department": profile.department if profile else "",
        "title": profile.title if profile else "",
    }


def patient_context(patient: Patient, *, viewer: User) -> dict[str, Any]:
    """What a reviewer needs beside the lines: age, sex, allergies."""
    id_number = patient.id_number
    return {
        "id": patient.pk,
        "name": patient.name,
        "sex": patient.sex,
        "sex_label": Patient.Sex(patient.sex).label,
        "age": age_of(patient),
        "birth_date": patient.birth_date,
        "id_number_masked": crypto.mask_id_number(id_number),
        "allergies": [allergy_row(a) for a in allergies_of(patient.pk)],
    }


def prescription_row(p: Prescription, *, viewer: User, with_signature: bool = True) -> dict[str, Any]:
    """One prescription as ``viewer`` may see it. The patient gets no internal
    notes and masked identifiers; staff get the guardian's ID number masked too
    (it is not needed to review)."""
    lines = list(p.lines.select_related("frequency", "route").order_by("position"))
    staff = viewer.role != Role.PATIENT
    guardian_id = p.guardian_id_number
    amount = sum(int(ln.unit_price_amount * ln.quantity) for ln in lines)
    row: dict[str, Any] = {
        "id": p.pk,
        "number": p.number,
        "status": p.status,
        "status_label": S(p.status).label,
        "kind": p.kind,
        "kind_label": Prescription.Kind(p.kind).label,
        "version": p.version,
        "patient": patient_context(p.patient, viewer=viewer),
        "doctor": _doctor_brief(p.doctor),
        "diagnosis": p.diagnosis,
        "icd10_code": p.icd10_code,
        "chronic_reason": p.chronic_reason,
        "valid_days": p.valid_days,
        "guardian": {
            "name": p.guardian_name,
            "relation": p.guardian_relation,
            "relation_label": Prescription.GuardianRelation(p.guardian_relation).label if p.guardian_relation else "",
            "id_number_masked": crypto.mask_id_number(guardian_id) if guardian_id else "",
        },
        "lines": [_line_row(ln) for ln in lines],
        "total_amount": amount,
        "total_yuan": yuan(amount),
        "created_at": p.created_at,
        "updated_at": p.updated_at,
        "issued_at": p.issued_at,
        "expires_at": p.expires_at,
        "submitted_at": p.submitted_at,
        "reviewed_at": p.reviewed_at,
        "reviewed_by_name": p.reviewed_by.display_name if p.reviewed_by else "",
        "paid_at": p.paid_at,
        "dispensed_at": p.dispensed_at,
        "delivery_method": p.delivery_method,
        "delivery_method_label": p.get_delivery_method_display() if p.delivery_method else "",
        "signed": bool(p.signature),
        "signature_valid": signature_valid(p) if with_signature and p.signature else False,
        "content_digest": p.content_digest,
        "cert_serial": p.cert_serial if staff else "",
        # internal: staff only
        "note_to_pharmacist": p.note_to_pharmacist if staff else "",
        "reject_reason": p.reject_reason if staff else "",
        "review_note": p.review_note if viewer.role == Role.PHARMACIST else "",
        "cancel_reason": p.cancel_reason if staff else "",
        "source_type": p.source_type,
        "source_id": p.source_id,
    }
    return row


# --- to-dos -----------------------------------------------------------------------------------


def awaiting_review() -> QuerySet[Prescription]:
    return Prescription.objects.filter(status=S.SUBMITTED)


def rejected_of(doctor: User) -> QuerySet[Prescription]:
    return Prescription.objects.filter(doctor=doctor, status=S.REJECTED)
