"""What the doctor signs: the canonical content of a prescription and its digest.

The integrity code is SHA-256 over ``hub.signing.canonical_json`` of the
prescription and its lines (every field a pharmacist, a patient or a courier
acts on, including the issue and expiry times). The CA signs that digest
(``ca.py``); :func:`signature_valid` recomputes it from the rows, so any change
after signing, through the API or in SQL, fails verification."""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal
from typing import Any

from hub.signing import canonical_json

from . import ca
from .errors import PharmacyError
from .models import Prescription, PrescriptionLine

CONTENT_VERSION = 1


def _iso(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).isoformat() if value else ""


def _num(value: Decimal) -> str:
    return f"{Decimal(value):.3f}"


def canonical_content(p: Prescription, lines: list[PrescriptionLine] | None = None) -> dict[str, Any]:
    rows = lines if lines is not None else list(p.lines.select_related("frequency", "route").order_by("position"))
    patient = p.patient
    return {
        "v": CONTENT_VERSION,
        "prescription": p.pk,
        "version": p.version,
        "kind": p.kind,
        "patient": {"id": patient.pk, "name": patient.name, "sex": patient.sex, "birth_date": str(patient.birth_date)},
        "doctor": p.doctor_id,
        "diagnosis": p.diagnosis,
        "icd10": p.icd10_code,
        "chronic_reason": p.chronic_reason,
        "valid_days": p.valid_days,
        "issued_at": _iso(p.issued_at),
        "expires_at": _iso(p.expires_at),
        "guardian": {"name": p.guardian_name, "relation": p.guardian_relation, "id_number": p.guardian_id_number},
        "source": [p.source_type, p.source_id],
        "lines": [
            {
                "position": ln.position,
                "drug": ln.drug_id,
                "drug_code": ln.drug_code,
                "drug_name": ln.drug_name,
                "specification": ln.specification,
                "dose": _num(ln.dose),
                "dose_unit": ln.dose_unit,
                "frequency": ln.frequency.code,
                "route": ln.route.code,
                "days": ln.days,
                "quantity": _num(ln.quantity),
                "quantity_unit": ln.quantity_unit,
                "instructions": ln.instructions,
                "unit_price_amount": ln.unit_price_amount,
                "entered_by": ln.entered_by_id,
            }
            for ln in rows
        ],
    }


def content_digest(p: Prescription) -> bytes:
    return hashlib.sha256(canonical_json(canonical_content(p))).digest()


def signature_valid(p: Prescription) -> bool:
    """True when the stored signature is the doctor's CA signature over the
    prescription's content as it is now in the database."""
    if not (p.signature and p.issued_at and p.cert_serial):
        return False
    digest = content_digest(p)
    if digest.hex() != p.content_digest:
        return False
    try:
        signer = ca.signer()
    except PharmacyError:
        return False
    sig = ca.Signature(
        algorithm=p.signature_algorithm, value=p.signature, cert_serial=p.cert_serial, signed_at=p.issued_at
    )
    return signer.verify(p.doctor, digest, sig)
