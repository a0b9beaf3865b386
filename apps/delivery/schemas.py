from __future__ import annotations

from ninja import Schema
from pydantic import Field

# --- requests ---------------------------------------------------------------------------


class AddressIn(Schema):
    recipient_name: str = Field(min_length=1, max_length=32)
    phone: str = Field(min_length=11, max_length=11)
    province_code: str = Field(min_length=6, max_length=6)
    province: str = Field(min_length=1, max_length=32)
    city_code: str = Field(min_length=6, max_length=6)
    city: str = Field(min_length=1, max_length=32)
    district_code: str = Field(min_length=6, max_length=6)
    district: str = Field(min_length=1, max_length=32)
    detail: str = Field(min_length=1, max_length=120)
    is_default: bool = False


class ShipmentIn(Schema):
    source_kind: str = Field(min_length=3, max_length=48)
    source_id: str = Field(min_length=1, max_length=64)
    method: str = Field(pattern="^(courier|pickup)$")
    address_id: int | None = Field(default=None, ge=1, le=2**63 - 1)


class BookIn(Schema):
    courier: str = Field(default="", max_length=16)


class ReasonIn(Schema):
    reason: str = Field(min_length=1, max_length=200)


class PickupVerifyIn(Schema):
    code: str = Field(min_length=1, max_length=12)


class SandboxStepIn(Schema):
    action: str = Field(default="next", pattern="^(next|fail|repeat)$")


# --- responses --------------------------------------------------------------------------
# Times are UTC (ISO 8601); clients show them in Asia/Shanghai.


class AddressOut(Schema):
    id: int
    recipient_name: str
    phone: str
    province_code: str
    province: str
    city_code: str
    city: str
    district_code: str
    district: str
    detail: str
    is_default: bool
    updated_at: str


class AddressListOut(Schema):
    items: list[AddressOut]


class RecipientOut(Schema):
    name: str  # masked (张*) for roles that do not need it
    phone: str  # masked (138****5678) for roles that do not need it
    region: str  # 省市区
    detail: str  # street address; "****" for roles that do not need it


class ShipmentEventOut(Schema):
    id: int
    status: str  # our status this event moved the shipment to, or "" (history only)
    status_label: str
    description: str  # the courier's words (Chinese)
    location: str
    occurred_at: str


class ShipmentOut(Schema):
    id: int
    number: str
    source_kind: str
    source_id: str
    patient_id: int
    patient_name: str
    method: str
    method_label: str
    courier: str
    courier_name: str
    waybill_no: str
    status: str
    status_label: str
    recipient: RecipientOut
    exception_reason: str
    pickup_locked_until: str | None
    created_at: str
    booked_at: str | None
    finished_at: str | None
    allowed_actions: list[str]
    can_get_pickup_code: bool
    events: list[ShipmentEventOut]


class ShipmentListOut(Schema):
    items: list[ShipmentOut]
    count: int


class PickupCodeOut(Schema):
    code: str  # shown once: asking again issues a new code and the old one stops working
    shipment_id: int


class TrackOut(Schema):
    stored: int
    transitions: int


class SandboxStepOut(Schema):
    callback_status: int  # what our callback endpoint answered the sandbox courier
    shipment: ShipmentOut


class CallbackAckOut(Schema):
    """The answer each courier expects (SF: return_code "0000"; Dada: status "ok")."""

    return_code: str | None = None
    return_msg: str | None = None
    status: str | None = None
