"""Prescription lifecycle: (current status, action) -> next status. Anything not
listed is refused by ``apps.core.lifecycle.transition`` with nothing written.

R6: no payment, dispensing or delivery before a pharmacist approves; the only
way into ``paid`` is from ``approved`` and into ``dispensed`` from ``paid``."""

from __future__ import annotations

from .models import Prescription

S = Prescription.Status
PRESCRIPTION_TRANSITIONS: dict[tuple[str, str], str] = {
    (S.DRAFT, "edit"): S.DRAFT,
    (S.DRAFT, "sign"): S.SIGNED,
    (S.DRAFT, "cancel"): S.CANCELLED,
    (S.SIGNED, "submit"): S.SUBMITTED,
    (S.SIGNED, "revise"): S.REVISED,  # reopened before submitting; the signature is void
    (S.SIGNED, "cancel"): S.CANCELLED,
    (S.SIGNED, "expire"): S.EXPIRED,
    (S.SUBMITTED, "approve"): S.APPROVED,
    (S.SUBMITTED, "reject"): S.REJECTED,
    (S.SUBMITTED, "cancel"): S.CANCELLED,
    (S.SUBMITTED, "expire"): S.EXPIRED,
    (S.REJECTED, "revise"): S.REVISED,
    (S.REJECTED, "cancel"): S.CANCELLED,
    (S.REJECTED, "expire"): S.EXPIRED,
    (S.REVISED, "edit"): S.REVISED,
    (S.REVISED, "sign"): S.SIGNED,
    (S.REVISED, "cancel"): S.CANCELLED,
    (S.APPROVED, "pay"): S.PAID,
    (S.APPROVED, "cancel"): S.CANCELLED,
    (S.APPROVED, "expire"): S.EXPIRED,
    (S.PAID, "dispense"): S.DISPENSED,
    (S.PAID, "refund"): S.REFUNDED,  # commerce refunded it before the pharmacy dispensed
}

# Who performs which action (the table says when). ``expire`` is the sweep's, ``pay`` and ``refund`` commerce's.
DOCTOR_ACTIONS = ("edit", "sign", "submit", "revise", "cancel")
PHARMACIST_ACTIONS = ("approve", "reject", "dispense")
# Content may change only in these states (and every change voids the signature).
EDITABLE = frozenset({S.DRAFT, S.REVISED})
