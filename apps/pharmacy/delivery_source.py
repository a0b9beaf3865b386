"""Prescriptions as something delivery ships (``apps.delivery.sources``): the kind
``pharmacy.prescription``, source id = the prescription's id.

- can ship: only a dispensed prescription whose signature still verifies, to its own
  就诊人 (``prescription_can_be_shipped``; R6: nothing leaves before approval and payment);
- delivered (courier or pickup): the prescription's order item is delivered, so
  commerce completes the order."""

from __future__ import annotations

import logging

from django.db import transaction

from apps.accounts.models import ConsentRecord, User
from apps.accounts.selectors import has_consent
from apps.audit.services import audit_record
from apps.commerce.models import OrderItem
from apps.commerce.services import order_item_delivered
from apps.delivery import services as delivery
from apps.delivery.errors import DeliveryCode, DeliveryError
from apps.delivery.models import Address
from apps.delivery.sources import ShipDecision, ShipmentRef, register_source
from hub.errors import ApiError, Invalid, NotFound

from .commerce_items import KIND as ITEM_KIND
from .errors import PharmacyCode, PharmacyError
from .models import Prescription
from .selectors import prescription_can_be_shipped

KIND = "pharmacy.prescription"
log = logging.getLogger(__name__)


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
    from .services import on_dispensed

    register_source(KIND, can_ship=_can_ship, on_delivered=_on_delivered)
    on_dispensed(ship_after_dispense)


# --- the patient's choice, and the shipment at dispensing -----------------------------------


def prescription_choose_delivery(
    *, user: User, prescription_id: int, method: str, address_id: int | None
) -> Prescription:
    """The patient picks 快递到家 (an address of theirs) or 到院自取 for an approved or paid
    prescription; the shipment is made when the pharmacy dispenses it."""
    p = Prescription.objects.select_related("patient").filter(pk=prescription_id).first()
    if p is None or p.patient.owner_id != user.pk:
        raise NotFound("处方")
    if method not in ("courier", "pickup"):
        raise Invalid("请选择配送方式", field="method")
    if method == "courier":
        if address_id is None or not Address.objects.filter(pk=address_id, owner=user).exists():
            raise Invalid("请选择收货地址", field="address_id")
        if not has_consent(user, ConsentRecord.Purpose.COURIER_SHARING):
            raise DeliveryError(DeliveryCode.COURIER_CONSENT_MISSING)
    with transaction.atomic():
        p = Prescription.objects.select_for_update().get(pk=p.pk)
        if p.status not in (Prescription.Status.APPROVED, Prescription.Status.PAID):
            raise PharmacyError(PharmacyCode.DELIVERY_LOCKED)
        p.delivery_method = method
        p.delivery_address_id = address_id if method == "courier" else None
        p.save(update_fields=["delivery_method", "delivery_address_id"])
        audit_record(
            action="pharmacy.delivery_choice",
            actor=user,
            object_type="prescription",
            object_id=p.pk,
            detail={"delivery_method": method},
        )
    return p


def ship_after_dispense(prescription_id: int, pharmacist: User) -> None:
    """After a dispense: the shipment the patient chose, booked (courier) or ready at the
    counter (pickup). A refusal (consent withdrawn, address deleted, courier down) leaves
    the dispense as it is; the pharmacist sees the prescription among shipments to make."""
    p = Prescription.objects.filter(pk=prescription_id).first()
    if p is None or not p.delivery_method:
        return
    try:
        shipment = delivery.shipment_create(
            staff=pharmacist,
            source_kind=KIND,
            source_id=str(p.pk),
            method=p.delivery_method,
            address_id=p.delivery_address_id,
        )
        if shipment.method == "courier":
            delivery.shipment_book(staff=pharmacist, shipment_id=shipment.pk)
        else:
            delivery.shipment_ready(staff=pharmacist, shipment_id=shipment.pk)
    except ApiError as exc:
        log.warning("prescription %s: shipment after dispensing not made: %s", p.pk, exc.code)
