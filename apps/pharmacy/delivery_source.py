"""Prescriptions as something delivery ships (``apps.delivery.sources``): the kind
``pharmacy.prescription``, source id = the prescription's id.

- can ship: only a dispensed prescription whose signature still verifies, to its own
  就诊人 (``prescription_can_be_shipped``; R6: nothing leaves before approval and payment);
- delivered (courier or pickup): the prescription's order item is delivered, so
  commerce completes the order."""

from __future__ import annotations

from apps.commerce.models import OrderItem
from apps.commerce.services import order_item_delivered
from apps.delivery.sources import ShipDecision, ShipmentRef, register_source

from .commerce_items import KIND as ITEM_KIND
from .models import Prescription
from .selectors import prescription_can_be_shipped

KIND = "pharmacy.prescription"


def _can_ship(source_id: str) -> ShipDecision:
    p = Prescription.objects.filter(pk=int(source_id)).first() if source_id.isdigit() and len(source_id) < 19 else None
    if p is None:
        return ShipDecision.refuse("处方不存在")
    if not prescription_can_be_shipped(p.pk):
        return ShipDecision.refuse("处方尚未审核、支付并发药，不能配送")
    return ShipDecision(patient_id=p.patient_id)


def _on_delivered(ref: ShipmentRef) -> None:
    p = Prescription.objects.filter(pk=int(ref.source_id)).only("payment_ref").first()
    if p is None or not p.payment_ref:
        return
    item = OrderItem.objects.filter(kind=ITEM_KIND, ref=ref.source_id, order__order_no=p.payment_ref).first()
    if item is not None:
        order_item_delivered(item_id=item.pk)


def register() -> None:
    register_source(KIND, can_ship=_can_ship, on_delivered=_on_delivered)
