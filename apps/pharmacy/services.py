"""Writes of the pharmacy domain: drafts, signing, submission, review, payment
and dispensing marks, expiry, the allergy store and the sandbox CA enrolment.

Every status change goes through ``apps.core.lifecycle.transition`` with
``states.PRESCRIPTION_TRANSITIONS``: it locks the row, checks the table, saves,
writes the event row and the audit record (ids and codes only), and publishes
``prescription.updated`` after commit. A refused rule raises before anything is
written. Prescriptions are entered line by line by the treating doctor
(``entered_by``); nothing here generates one.

Other apps call (see docs/adr/0042-prescriptions.md):

- ``prescription_can_be_paid(id)`` / ``prescription_can_be_dispensed(id)``
  (re-exported from selectors) before charging or shipping;
- ``prescription_mark_paid(prescription_id=, payment_ref=)`` from the
  order-paid handler; it refuses anything not approved and in validity."""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.accounts.models import Patient, User
from apps.accounts.roles import Role
from apps.audit.services import audit_record
from apps.core import lifecycle
from apps.core.lifecycle import AuditEntry
from hub import crypto
from hub.errors import Forbidden, Invalid, NotFound

from . import ca, events, rules, selectors
from .errors import PharmacyCode, PharmacyError
from .models import Drug, PatientAllergy, Prescription, PrescriptionLine
from .rules import CheckedLine, DraftInput, LineInput
from .selectors import (
    prescription_can_be_dispensed,
    prescription_can_be_paid,
    prescription_can_be_shipped,
    prescription_charge,
)
from .signing import content_digest, signature_valid
from .states import PRESCRIPTION_TRANSITIONS

__all__ = [
    "prescription_can_be_dispensed",
    "prescription_can_be_paid",
    "prescription_can_be_shipped",
    "prescription_charge",
]

S = Prescription.Status
REFUSED = PharmacyCode.TRANSITION_REFUSED

# One literal audit action per lifecycle action (apps/audit/labels.py labels each).
AUDIT_ACTIONS: dict[str, str] = {
    "edit": "pharmacy.prescription_edit",
    "sign": "pharmacy.prescription_sign",
    "submit": "pharmacy.prescription_submit",
    "revise": "pharmacy.prescription_revise",
    "cancel": "pharmacy.prescription_cancel",
    "approve": "pharmacy.prescription_approve",
    "reject": "pharmacy.prescription_reject",
    "pay": "pharmacy.prescription_pay",
    "dispense": "pharmacy.prescription_dispense",
    "expire": "pharmacy.prescription_expire",
    "refund": "pharmacy.prescription_refund",
}


def _transition(
    p: Prescription,
    action: str,
    *,
    actor: User | None,
    fields: list[str],
    detail: dict[str, Any] | None = None,
    reason: str = "",
) -> Prescription:
    return lifecycle.transition(
        p,
        action,
        table=PRESCRIPTION_TRANSITIONS,
        actor=actor,
        code=REFUSED,
        reason=reason,
        fields=fields,
        audit=AuditEntry(
            action=AUDIT_ACTIONS[action],
            object_type="prescription",
            object_id=p.pk,
            detail={"version": p.version, **(detail or {})},
            actor_username="" if actor else "system",
        ),
        publish=events.publications(action),
    )


def _require(p: Prescription, action: str) -> None:
    lifecycle.require(p, action, table=PRESCRIPTION_TRANSITIONS, code=REFUSED)


def _locked(prescription_id: int) -> Prescription:
    return (
        Prescription.objects.select_for_update(of=("self",))
        .select_related("patient", "patient__owner", "doctor")
        .get(pk=prescription_id)
    )


def _patient_for(doctor: User, patient_id: int) -> Patient:
    """The 就诊人, if the doctor holds them in care now; else 404 (audited)."""
    patient = Patient.objects.select_related("owner").filter(pk=patient_id, is_active=True).first()
    if patient is None or not selectors.may_prescribe(doctor, patient_id):
        audit_record(
            action="pharmacy.access_denied",
            actor=doctor,
            object_type="patient",
            object_id=patient_id,
            result="denied",
        )
        raise NotFound("就诊人")
    return patient


def _apply_draft(p: Prescription, draft: DraftInput, kind: str) -> None:
    p.kind = kind
    p.icd10_code = draft.icd10_code.strip().upper()
    p.valid_days = draft.valid_days
    p.guardian_name = draft.guardian_name.strip()[:64]
    p.guardian_relation = draft.guardian_relation
    p.set_clinical_text(
        diagnosis=draft.diagnosis.strip()[:500],
        chronic_reason=draft.chronic_reason.strip()[:200],
        note_to_pharmacist=draft.note_to_pharmacist.strip()[:500],
        guardian_id_number=draft.guardian_id_number.strip().upper(),
    )
    p.updated_at = timezone.now()


DRAFT_FIELDS = [
    "kind",
    "icd10_code",
    "valid_days",
    "guardian_name",
    "guardian_relation",
    "diagnosis_enc",
    "chronic_reason_enc",
    "note_to_pharmacist_enc",
    "guardian_id_number_enc",
    "updated_at",
]


def _write_lines(p: Prescription, checked: list[CheckedLine], *, doctor: User) -> None:
    p.lines.all().delete()
    now = timezone.now()
    PrescriptionLine.objects.bulk_create(
        [
            PrescriptionLine(
                prescription=p,
                position=c.position,
                drug=c.drug,
                drug_code=c.drug.code,
                drug_name=c.drug.name,
                specification=c.drug.specification,
                dose=c.data.dose,
                dose_unit=c.drug.dose_unit,
                frequency=c.frequency,
                route=c.route,
                days=c.data.days,
                quantity=c.data.quantity,
                quantity_unit=c.drug.unit,
                instructions=c.data.instructions.strip()[:100],
                unit_price_amount=c.drug.price_amount,
                entered_by=doctor,
                entered_at=now,
            )
            for c in checked
        ]
    )


def draft_of(p: Prescription) -> DraftInput:
    """The stored content as rule input (checked again at signing)."""
    return DraftInput(
        diagnosis=p.diagnosis,
        icd10_code=p.icd10_code,
        chronic_reason=p.chronic_reason,
        valid_days=p.valid_days,
        guardian_name=p.guardian_name,
        guardian_relation=p.guardian_relation,
        guardian_id_number=p.guardian_id_number,
        note_to_pharmacist=p.note_to_pharmacist,
        lines=[
            LineInput(
                drug_code=ln.drug_code,
                dose=ln.dose,
                frequency=ln.frequency.code,
                route=ln.route.code,
                days=ln.days,
                quantity=ln.quantity,
                instructions=ln.instructions,
            )
            for ln in p.lines.select_related("frequency", "route").order_by("position")
        ],
    )


# --- the doctor ------------------------------------------------------------------------------


def prescription_create(
    *, doctor: User, patient_id: int, draft: DraftInput, source_type: str = "", source_id: str = ""
) -> Prescription:
    """A draft entered by the treating doctor for a 就诊人 in their care."""
    patient = _patient_for(doctor, patient_id)
    kind, checked = rules.check(draft, patient, today=timezone.localdate())
    with transaction.atomic():
        p = Prescription(patient=patient, doctor=doctor, source_type=source_type[:32], source_id=source_id[:64])
        _apply_draft(p, draft, kind)
        p.save()
        _write_lines(p, checked, doctor=doctor)
        audit_record(
            action="pharmacy.prescription_create",
            actor=doctor,
            object_type="prescription",
            object_id=p.pk,
            detail={"patient": patient.pk, "kind": kind, "lines": len(checked)},
        )
        events.publish_created(p)
    return p


def prescription_update(*, doctor: User, prescription_id: int, draft: DraftInput) -> Prescription:
    """Replace the content of a draft (or a revision) with what the doctor entered."""
    p = selectors.prescription_of_doctor(doctor, prescription_id)
    _require(p, "edit")
    patient = _patient_for(doctor, p.patient_id)
    kind, checked = rules.check(draft, patient, today=timezone.localdate())
    with transaction.atomic():
        p = _locked(p.pk)
        _require(p, "edit")
        _apply_draft(p, draft, kind)
        _write_lines(p, checked, doctor=doctor)
        _transition(p, "edit", actor=doctor, fields=DRAFT_FIELDS, detail={"kind": kind, "lines": len(checked)})
    return p


def _expiry(issued_at: dt.datetime, valid_days: int) -> dt.datetime:
    """Valid on the day issued (and ``valid_days - 1`` more), to midnight in Asia/Shanghai."""
    day = timezone.localdate(issued_at) + dt.timedelta(days=valid_days)
    return timezone.make_aware(dt.datetime.combine(day, dt.time(0, 0)), timezone.get_default_timezone())


def prescription_sign(*, doctor: User, prescription_id: int, pin: str) -> Prescription:
    """The doctor's CA signature over the canonical content (R6). The rules are
    checked again first; the CA is asked outside the transaction (a wrong PIN
    stays counted), and the content must be what was signed when it is stored."""
    p = selectors.prescription_of_doctor(doctor, prescription_id)
    _require(p, "sign")
    patient = _patient_for(doctor, p.patient_id)
    issued_at = timezone.now()
    rules.check(draft_of(p), patient, today=timezone.localdate(issued_at))
    p.issued_at = issued_at
    p.expires_at = _expiry(issued_at, p.valid_days)
    digest = content_digest(p)
    signature = ca.signer().sign(doctor, digest, pin=pin)
    with transaction.atomic():
        locked = _locked(p.pk)
        _require(locked, "sign")
        locked.issued_at, locked.expires_at = p.issued_at, p.expires_at
        if content_digest(locked) != digest:
            raise PharmacyError(PharmacyCode.CONTENT_CHANGED)
        locked.content_digest = digest.hex()
        locked.signature = signature.value
        locked.signature_algorithm = signature.algorithm
        locked.cert_serial = signature.cert_serial
        locked.signed_at = signature.signed_at
        _transition(
            locked,
            "sign",
            actor=doctor,
            fields=[
                "issued_at",
                "expires_at",
                "content_digest",
                "signature",
                "signature_algorithm",
                "cert_serial",
                "signed_at",
            ],
            detail={"cert": signature.cert_serial},
        )
    return locked


def prescription_submit(*, doctor: User, prescription_id: int) -> Prescription:
    """Send a signed prescription to the pharmacists' review queue."""
    p = selectors.prescription_of_doctor(doctor, prescription_id)
    with transaction.atomic():
        p = _locked(p.pk)
        _require(p, "submit")
        if not signature_valid(p):
            raise PharmacyError(PharmacyCode.SIGNATURE_INVALID)
        if p.expires_at is None or p.expires_at <= timezone.now():
            raise PharmacyError(PharmacyCode.EXPIRED)
        p.submitted_at = timezone.now()
        _transition(p, "submit", actor=doctor, fields=["submitted_at"])
    return p


_UNSIGNED = {
    "issued_at": None,
    "expires_at": None,
    "content_digest": "",
    "signature": "",
    "signature_algorithm": "",
    "cert_serial": "",
    "signed_at": None,
}


def prescription_revise(*, doctor: User, prescription_id: int) -> Prescription:
    """Reopen a rejected (or signed, not yet submitted) prescription for editing:
    the signature is void, the version goes up; it must be signed and submitted again."""
    p = selectors.prescription_of_doctor(doctor, prescription_id)
    with transaction.atomic():
        p = _locked(p.pk)
        _require(p, "revise")
        for name, value in _UNSIGNED.items():
            setattr(p, name, value)
        p.version += 1
        p.updated_at = timezone.now()
        _transition(p, "revise", actor=doctor, fields=[*_UNSIGNED, "version", "updated_at"])
    return p


def prescription_cancel(*, doctor: User, prescription_id: int, reason: str = "") -> Prescription:
    p = selectors.prescription_of_doctor(doctor, prescription_id)
    with transaction.atomic():
        p = _locked(p.pk)
        _require(p, "cancel")
        p.cancelled_at = timezone.now()
        # Clinical free text: encrypted on the row, not in the event log.
        p.cancel_reason_enc = _enc_text(reason.strip()[:200], "prescription.cancel_reason")
        _transition(p, "cancel", actor=doctor, fields=["cancelled_at", "cancel_reason_enc"])
    return p


# --- the pharmacist ----------------------------------------------------------------------------


def _enc_text(value: str, context: str) -> str:
    return crypto.encrypt(value, context=context) if value else ""


def _pharmacist(user: User) -> None:
    if user.role != Role.PHARMACIST or not user.is_active:
        raise Forbidden()


def prescription_approve(*, pharmacist: User, prescription_id: int, note: str = "") -> Prescription:
    """The pharmacist's approval puts the prescription in effect (R6). Refused when
    the signature no longer verifies over the content or the validity has passed."""
    _pharmacist(pharmacist)
    p = selectors.prescription_visible(pharmacist, prescription_id)
    with transaction.atomic():
        p = _locked(p.pk)
        _require(p, "approve")
        if not signature_valid(p):
            raise PharmacyError(PharmacyCode.SIGNATURE_INVALID)
        if p.expires_at is None or p.expires_at <= timezone.now():
            raise PharmacyError(PharmacyCode.EXPIRED)
        p.reviewed_by, p.reviewed_at = pharmacist, timezone.now()
        p.set_review_text(reject_reason=p.reject_reason, review_note=note.strip()[:500])
        _transition(p, "approve", actor=pharmacist, fields=["reviewed_by", "reviewed_at", "review_note_enc"])
    return p


def prescription_reject(*, pharmacist: User, prescription_id: int, reason: str, note: str = "") -> Prescription:
    """Back to the doctor with a reason they read and act on."""
    _pharmacist(pharmacist)
    reason = reason.strip()
    if not reason:
        raise PharmacyError(PharmacyCode.REASON_REQUIRED)
    p = selectors.prescription_visible(pharmacist, prescription_id)
    with transaction.atomic():
        p = _locked(p.pk)
        _require(p, "reject")
        p.reviewed_by, p.reviewed_at = pharmacist, timezone.now()
        p.set_review_text(reject_reason=reason[:500], review_note=note.strip()[:500])
        _transition(
            p,
            "reject",
            actor=pharmacist,
            fields=["reviewed_by", "reviewed_at", "reject_reason_enc", "review_note_enc"],
        )
    return p


def prescription_mark_paid(*, prescription_id: int, payment_ref: str, actor: User | None = None) -> Prescription:
    """Record the payment (commerce's order-paid handler calls this at merge).
    Refused, with nothing written, for anything not approved, past its validity or
    whose signature fails: no payment before approval (R6). Idempotent for the
    same ``payment_ref``; another payment of a paid prescription is refused."""
    if not Prescription.objects.filter(pk=prescription_id).exists():
        raise NotFound("处方")
    with transaction.atomic():
        p = _locked(prescription_id)
        if p.status in (S.PAID, S.DISPENSED) and p.payment_ref == payment_ref[:64]:
            return p  # the same payment again (a repeated callback): already recorded, nothing written
        if p.status != S.APPROVED:
            raise PharmacyError(PharmacyCode.NOT_APPROVED, status=p.status)
        if not prescription_can_be_paid(p.pk):
            if p.expires_at is None or p.expires_at <= timezone.now():
                raise PharmacyError(PharmacyCode.EXPIRED)
            raise PharmacyError(PharmacyCode.SIGNATURE_INVALID)
        p.paid_at, p.payment_ref = timezone.now(), payment_ref[:64]
        _transition(p, "pay", actor=actor, fields=["paid_at", "payment_ref"])
    return p


def prescription_mark_refunded(*, prescription_id: int, refund_ref: str) -> bool:
    """Commerce refunded a paid prescription: it may no longer be dispensed. A
    dispensed one stays dispensed (the medicine left; the refund is the money's
    business, returned medicine is the pharmacy's). Idempotent; False when nothing changed."""
    with transaction.atomic():
        p = _locked(prescription_id)
        if p.status != S.PAID:
            return False
        _transition(p, "refund", actor=None, fields=[], detail={"refund": refund_ref[:64]})
    return True


def prescription_dispense(*, pharmacist: User, prescription_id: int) -> Prescription:
    """The pharmacy dispensed it: only after payment, so only after approval."""
    _pharmacist(pharmacist)
    p = selectors.prescription_visible(pharmacist, prescription_id)
    with transaction.atomic():
        p = _locked(p.pk)
        if p.status != S.PAID:
            raise PharmacyError(PharmacyCode.NOT_PAID, status=p.status)
        if not signature_valid(p):
            raise PharmacyError(PharmacyCode.SIGNATURE_INVALID)
        _take_stock(p)
        p.dispensed_by, p.dispensed_at = pharmacist, timezone.now()
        _transition(p, "dispense", actor=pharmacist, fields=["dispensed_by", "dispensed_at"])
        for hook in _dispensed_hooks:
            transaction.on_commit(functools.partial(hook, p.pk, pharmacist))
    return p


# Called after a dispense commits (``delivery_source`` registers the patient's chosen delivery).
_dispensed_hooks: list[Callable[[int, User], None]] = []


def on_dispensed(hook: Callable[[int, User], None]) -> None:
    if hook not in _dispensed_hooks:
        _dispensed_hooks.append(hook)


def _take_stock(p: Prescription) -> None:
    """Where the catalogue tracks stock, take what the lines dispense (whole units
    rounded up), under the drugs' row locks; refuse with nothing taken when short."""
    lines = list(p.lines.order_by("position"))
    tracked = {
        d.pk: d
        for d in Drug.objects.select_for_update()
        .filter(pk__in=[ln.drug_id for ln in lines], stock__isnull=False)
        .order_by("pk")
    }
    for ln in lines:
        drug = tracked.get(ln.drug_id)
        if drug is None:
            continue
        needed = math.ceil(ln.quantity)
        if drug.stock is not None and drug.stock < needed:
            raise PharmacyError(
                PharmacyCode.OUT_OF_STOCK, drug=drug.name, drug_code=drug.code, stock=drug.stock, needed=needed
            )
        Drug.objects.filter(pk=drug.pk).update(stock=F("stock") - needed)


EXPIRING = (S.SIGNED, S.SUBMITTED, S.REJECTED, S.APPROVED)


def prescriptions_expire_due(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    """Expire every unpaid prescription past its validity (R8). Safe to re-run and
    to run in parallel (SKIP LOCKED)."""
    now = now or timezone.now()
    ids = list(
        Prescription.objects.filter(status__in=EXPIRING, expires_at__lte=now)
        .order_by("expires_at")
        .values_list("id", flat=True)[:limit]
    )
    done = 0
    for pk in ids:
        with transaction.atomic():
            p = (
                Prescription.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("patient", "doctor")
                .filter(pk=pk, status__in=EXPIRING, expires_at__lte=now)
                .first()
            )
            if p is None:
                continue
            _transition(p, "expire", actor=None, fields=[])
            done += 1
    return done


# --- allergies and the sandbox CA ---------------------------------------------------------------


def allergy_add(*, actor: User, patient_id: int, allergen: str, reaction: str = "") -> PatientAllergy:
    """Record an allergy: staff record hospital data, a patient account reports its own."""
    allergen = allergen.strip()
    if not allergen or len(allergen) > 64:
        raise Invalid("请填写过敏原（不超过64字）", field="allergen")
    patient = selectors.patient_for_allergies(actor, patient_id)
    source = PatientAllergy.Source.PATIENT_REPORTED if actor.role == Role.PATIENT else PatientAllergy.Source.HOSPITAL
    with transaction.atomic():
        row = PatientAllergy(patient=patient, source=source, recorded_by=actor)
        row.set_text(allergen=allergen, reaction=reaction.strip()[:200])
        row.save()
        audit_record(
            action="pharmacy.allergy_add",
            actor=actor,
            object_type="patient",
            object_id=patient.pk,
            detail={"allergy": row.pk, "source": source},
        )
    return row


def ca_enrol(*, doctor: User, pin: str, valid_days: int = 365) -> ca.CertificateInfo:
    """Sandbox only: issue the doctor a signing certificate under ``pin``."""
    if doctor.role != Role.DOCTOR:
        raise Forbidden()
    signer = ca.signer()
    if not isinstance(signer, ca.SandboxCaSigner):
        raise PharmacyError(PharmacyCode.CA_SANDBOX_ONLY)
    with transaction.atomic():
        info = signer.enrol(doctor, pin=pin, valid_days=valid_days)
        audit_record(
            action="pharmacy.ca_enrol",
            actor=doctor,
            object_type="user",
            object_id=doctor.pk,
            detail={"cert": info.serial},
        )
    return info
