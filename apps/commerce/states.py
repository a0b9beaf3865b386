"""Transition tables: (current status, action) -> next status. Anything not
listed is refused by apps.core.lifecycle.transition."""

from __future__ import annotations

from .models import Order, Refund

S = Order.Status
ORDER_TRANSITIONS: dict[tuple[str, str], str] = {
    (S.CREATED, "pay"): S.PAID,
    (S.CREATED, "cancel"): S.CANCELLED,  # the patient
    (S.CREATED, "expire"): S.CANCELLED,  # the unpaid timeout (task or sweep)
    (S.PAID, "fulfil"): S.FULFILLING,  # some item's owning app is still delivering
    (S.PAID, "complete"): S.COMPLETED,  # every handler delivered at once
    (S.FULFILLING, "complete"): S.COMPLETED,
    (S.PAID, "refund_request"): S.REFUND_REQUESTED,
    (S.FULFILLING, "refund_request"): S.REFUND_REQUESTED,
    (S.COMPLETED, "refund_request"): S.REFUND_REQUESTED,
    (S.PARTIALLY_REFUNDED, "refund_request"): S.REFUND_REQUESTED,
    # A payment that arrives after the order was cancelled is kept and returned in full.
    (S.CANCELLED, "late_payment"): S.REFUND_REQUESTED,
    (S.REFUND_REQUESTED, "refund_partial"): S.PARTIALLY_REFUNDED,
    (S.REFUND_REQUESTED, "refund_full"): S.REFUNDED,
    # A rejected (or failed and abandoned) refund returns the order to where it was
    # (Order.status_before_refund names which).
    (S.REFUND_REQUESTED, "resume_paid"): S.PAID,
    (S.REFUND_REQUESTED, "resume_fulfilling"): S.FULFILLING,
    (S.REFUND_REQUESTED, "resume_completed"): S.COMPLETED,
    (S.REFUND_REQUESTED, "resume_partially_refunded"): S.PARTIALLY_REFUNDED,
}

R = Refund.Status
REFUND_TRANSITIONS: dict[tuple[str, str], str] = {
    (R.REQUESTED, "approve"): R.PROCESSING,  # within the single-approval limit
    (R.REQUESTED, "approve_first"): R.APPROVED,  # over COMMERCE_REFUND_APPROVAL_FEN: a second role must approve
    (R.APPROVED, "approve"): R.PROCESSING,
    (R.REQUESTED, "reject"): R.REJECTED,
    (R.APPROVED, "reject"): R.REJECTED,
    (R.PROCESSING, "succeed"): R.SUCCEEDED,  # the provider's refund notice (or query) says so
    (R.PROCESSING, "fail"): R.FAILED,
    (R.FAILED, "retry"): R.PROCESSING,
}
