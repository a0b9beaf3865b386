"""The visit summary (问诊小结) for the visit's patient account and its doctor: the
header, the signed record (diagnosis and advice: never the doctor's private notes;
"病历待医生签名" until it is signed), the visit's prescriptions (pharmacy rows with
``source_type="consultation", source_id=<visit public_id>``, drafts left out) and its
orders (the consultation item ``ref=<visit public_id>`` and the prescriptions' orders).
Anyone else gets 404."""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from apps.accounts.models import User
from apps.audit.services import audit_record
from apps.commerce.models import Order
from apps.pharmacy.models import Prescription
from hub.errors import NotFound

from .models import Rating, Visit, VisitRecord
from .record import signature_valid

UNSIGNED = "病历待医生签名"
HIDDEN_PRESCRIPTIONS = (Prescription.Status.DRAFT, Prescription.Status.REVISED, Prescription.Status.CANCELLED)


def _visit_for(user: User, visit_id: str) -> Visit:
    visit = (
        Visit.objects.select_related("doctor__user", "doctor__department", "department", "patient")
        .filter(public_id=visit_id)
        .first()
    )
    if visit is None or not (
        visit.account_id == user.pk or (visit.doctor is not None and visit.doctor.user_id == user.pk)
    ):
        audit_record(
            action="consult.summary_denied", actor=user, object_type="visit", object_id=visit_id, result="denied"
        )
        raise NotFound("问诊")
    return visit


def _header(visit: Visit) -> dict[str, Any]:
    doctor = visit.doctor
    rating = Rating.objects.filter(visit=visit).only("stars").first()
    return {
        "id": visit.public_id,
        "status": visit.status,
        "status_label": visit.get_status_display(),
        "kind": visit.kind,
        "kind_label": visit.get_kind_display(),
        "patient_name": visit.patient.name,
        "doctor_name": (doctor.user.display_name or "") if doctor else "",
        "doctor_title_label": doctor.get_title_display() if doctor else "",
        "department_name": visit.department.name,
        "created_at": visit.created_at,
        "called_at": visit.called_at,
        "ended_at": visit.ended_at,
        "rated": rating is not None,
        "rating_stars": rating.stars if rating is not None else None,
    }


def _record(visit: Visit) -> dict[str, Any]:
    record = VisitRecord.objects.select_related("visit__patient", "visit__doctor", "signed_by").filter(visit=visit)
    row = record.first()
    if row is None or row.signed_at is None:
        return {
            "signed": False,
            "notice": UNSIGNED,
            "icd10_code": "",
            "diagnosis": "",
            "advice": "",
            "chief_complaint": "",
            "signed_at": None,
            "signed_by_name": "",
            "signature_valid": False,
        }
    return {
        "signed": True,
        "notice": "",
        "chief_complaint": row.chief_complaint,
        "icd10_code": row.icd10_code,
        "diagnosis": row.diagnosis,
        "advice": row.advice,
        "signed_at": row.signed_at,
        "signed_by_name": row.signed_by.display_name if row.signed_by else "",
        "signature_valid": signature_valid(row),
    }


def _prescriptions(visit: Visit) -> list[Prescription]:
    return list(
        Prescription.objects.filter(patient=visit.patient, source_type="consultation", source_id=visit.public_id)
        .exclude(status__in=HIDDEN_PRESCRIPTIONS)
        .prefetch_related("lines")
        .order_by("created_at", "id")
    )


def summary(*, user: User, visit_id: str) -> dict[str, Any]:
    visit = _visit_for(user, visit_id)
    prescriptions = _prescriptions(visit)
    order_filter = Q(items__kind="consultation", items__ref=visit.public_id)
    if visit.order_no:
        order_filter |= Q(order_no=visit.order_no)
    if prescriptions:
        order_filter |= Q(items__kind="prescription", items__ref__in=[str(p.pk) for p in prescriptions])
    orders = Order.objects.filter(order_filter, patient=visit.patient).distinct().order_by("created_at", "id")
    audit_record(action="consult.summary_read", actor=user, object_type="visit", object_id=visit.public_id)
    return {
        "visit": _header(visit),
        "record": _record(visit),
        "prescriptions": [
            {
                "id": p.pk,
                "status": p.status,
                "status_label": p.get_status_display(),
                "drugs": [line.drug_name for line in sorted(p.lines.all(), key=lambda ln: ln.position)],
            }
            for p in prescriptions
        ],
        "orders": [
            {
                "order_no": o.order_no,
                "title": o.title,
                "amount_fen": o.payable_fen,
                "status_label": o.get_status_display(),
            }
            for o in orders
        ],
        "scales": [],
    }
