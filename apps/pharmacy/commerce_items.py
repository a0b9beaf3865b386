"""Prescriptions as something commerce sells (``apps.commerce.registry``): the kind
``prescription``, ref = the prescription's id, quantity 1.

- price: the prescription's lines at the prices entered (``prescription_charge``);
  the order's title names no drug (orders are not clinical records);
- checkout: only an approved prescription of that 就诊人, in its validity, whose
  signature verifies (R6: no payment before approval);
- paid: ``prescription_mark_paid`` (idempotent per order); delivered later, when the
  medicine reaches the patient (delivery or pickup calls ``order_item_delivered``);
- refunded: a paid, undispensed prescription can no longer be dispensed."""

from __future__ import annotations

from typing import Any

from apps.commerce.registry import ItemEvent, Quote, register_item_kind
from hub.errors import NotFound

from .selectors import prescription_can_be_paid, prescription_charge
from .services import prescription_mark_paid, prescription_mark_refunded

KIND = "prescription"


def _id(ref: str) -> int:
    return int(ref) if ref.isdigit() and len(ref) < 19 else 0


def _quote(patient: Any, ref: str, quantity: int) -> Quote:
    charge = prescription_charge(_id(ref))
    if charge is None or charge["patient_id"] != patient.pk or quantity != 1:
        # The checkout's can_checkout refuses these first; a quote never prices them.
        raise NotFound("处方")
    return Quote(title=f"处方药品（{len(charge['items'])} 种）", unit_price_fen=int(charge["total_amount"]))


def _can_checkout(patient: Any, ref: str, quantity: int) -> str | None:
    charge = prescription_charge(_id(ref))
    if charge is None or charge["patient_id"] != patient.pk:
        return "处方不存在"
    if quantity != 1:
        return "处方只能整张支付"
    if not prescription_can_be_paid(_id(ref)):
        return "处方尚未通过药师审核或已过期，暂不能支付"
    return None


def _on_paid(item: ItemEvent) -> bool:
    prescription_mark_paid(prescription_id=_id(item.ref), payment_ref=item.order_no)
    return False  # delivered when the medicine reaches the patient


def _on_refunded(item: ItemEvent) -> bool:
    prescription_mark_refunded(prescription_id=_id(item.ref), refund_ref=item.refund_no or item.order_no)
    return True


def register() -> None:
    register_item_kind(
        KIND, title="处方药品", quote=_quote, can_checkout=_can_checkout, on_paid=_on_paid, on_refunded=_on_refunded
    )
