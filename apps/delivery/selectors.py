"""Reads of the delivery domain and their response shapes, masked by role.

A patient sees the shipments and addresses of their own account only (any other
id answers 404). Delivery staff (pharmacist, sysadmin) work hospital-wide: the
pharmacy ships for every patient. The pharmacist sees the recipient in full
(the counter and the phone call need it); the sysadmin sees a masked name and
phone and the region only."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from apps.accounts.models import User
from apps.accounts.roles import UNMASKED_ID_ROLES, Role
from apps.core.lifecycle import allowed_actions
from hub.crypto import mask_name, mask_phone
from hub.errors import NotFound

from . import couriers
from .events import event_row
from .models import Address, Shipment
from .states import SHIPMENT_TRANSITIONS, STAFF_ACTIONS

STAFF_ROLES = (Role.PHARMACIST, Role.SYSADMIN)
# What each staff role may do (the table says when); only the pharmacist hands over parcels.
ACTIONS_BY_ROLE: dict[str, tuple[str, ...]] = {
    Role.PHARMACIST: STAFF_ACTIONS,
    Role.SYSADMIN: ("book", "cancel", "mark_failed"),
}
# Actions that belong to one method only.
METHOD_ACTIONS: dict[str, frozenset[str]] = {
    Shipment.Method.COURIER: frozenset({"book", "cancel", "mark_failed"}),
    Shipment.Method.PICKUP: frozenset({"ready", "collect", "cancel"}),
}


def address_row(address: Address) -> dict[str, Any]:
    """For the account's own address book: its own data, in full."""
    return {
        "id": address.pk,
        "recipient_name": address.recipient_name,
        "phone": address.phone,
        "province_code": address.province_code,
        "province": address.province,
        "city_code": address.city_code,
        "city": address.city,
        "district_code": address.district_code,
        "district": address.district,
        "detail": address.detail,
        "is_default": address.is_default,
        "updated_at": address.updated_at.isoformat(),
    }


def addresses(user: User) -> QuerySet[Address]:
    return Address.objects.filter(owner=user).order_by("-is_default", "-updated_at", "-pk")


def _recipient(shipment: Shipment, viewer: User) -> dict[str, Any]:
    full = viewer.pk == shipment.owner_id or viewer.role in UNMASKED_ID_ROLES
    name, phone, detail = shipment.recipient_name, shipment.phone, shipment.detail
    return {
        "name": name if full else mask_name(name),
        "phone": phone if full else mask_phone(phone) if phone else "",
        "region": shipment.region,
        "detail": detail if full else ("****" if detail else ""),
    }


def _courier_name(code: str) -> str:
    if not code:
        return ""
    try:
        return couriers.courier(code).name
    except Exception:  # a courier no longer configured: show its code
        return code


def shipment_row(shipment: Shipment, viewer: User, *, with_events: bool = False) -> dict[str, Any]:
    among = [a for a in ACTIONS_BY_ROLE.get(viewer.role, ()) if a in METHOD_ACTIONS[shipment.method]]
    row: dict[str, Any] = {
        "id": shipment.pk,
        "number": shipment.number,
        "source_kind": shipment.source_kind,
        "source_id": shipment.source_id,
        "patient_id": shipment.patient_id,
        "patient_name": shipment.patient.name
        if viewer.pk == shipment.owner_id or viewer.role in UNMASKED_ID_ROLES
        else mask_name(shipment.patient.name),
        "method": shipment.method,
        "method_label": Shipment.Method(shipment.method).label,
        "courier": shipment.courier,
        "courier_name": _courier_name(shipment.courier),
        "waybill_no": shipment.waybill_no,
        "status": shipment.status,
        "status_label": Shipment.Status(shipment.status).label,
        "recipient": _recipient(shipment, viewer),
        "exception_reason": shipment.exception_reason,
        "pickup_locked_until": shipment.pickup_locked_until.isoformat() if shipment.pickup_locked_until else None,
        "created_at": shipment.created_at.isoformat(),
        "booked_at": shipment.booked_at.isoformat() if shipment.booked_at else None,
        "finished_at": shipment.finished_at.isoformat() if shipment.finished_at else None,
        "allowed_actions": allowed_actions(SHIPMENT_TRANSITIONS, shipment.status, among=among),
        "events": [],
    }
    # The patient's one action: ask for the pickup code (shown once) while it waits at the counter.
    row["can_get_pickup_code"] = viewer.pk == shipment.owner_id and shipment.status == Shipment.Status.READY_FOR_PICKUP
    if with_events:
        # Sorted here, not in SQL, so a prefetched list (the patient's shipment list) is used as is.
        ordered = sorted(shipment.events.all(), key=lambda e: (e.occurred_at, e.pk), reverse=True)
        row["events"] = [event_row(e) for e in ordered]
    return row


def my_shipments(user: User) -> QuerySet[Shipment]:
    return Shipment.objects.filter(owner=user).select_related("patient").order_by("-created_at", "-pk")


def my_shipment(user: User, shipment_id: int) -> Shipment:
    shipment = my_shipments(user).filter(pk=shipment_id).first()
    if shipment is None:
        raise NotFound("配送单")
    return shipment


def staff_shipments(
    *, q: str = "", status: str = "", method: str = "", source_kind: str = "", source_id: str = ""
) -> QuerySet[Shipment]:
    qs = Shipment.objects.select_related("patient").order_by("-created_at", "-pk")
    if q:
        qs = qs.filter(Q(number__iexact=q) | Q(waybill_no__iexact=q))
    if status:
        qs = qs.filter(status=status)
    if method:
        qs = qs.filter(method=method)
    if source_kind:
        qs = qs.filter(source_kind=source_kind)
    if source_id:
        qs = qs.filter(source_id=source_id)
    return qs


def staff_shipment(shipment_id: int) -> Shipment:
    shipment = Shipment.objects.select_related("patient").filter(pk=shipment_id).first()
    if shipment is None:
        raise NotFound("配送单")
    return shipment
