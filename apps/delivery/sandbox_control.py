"""The sandbox courier's steps: what it pushes next to our callback endpoint.

Called by the timed huey task (``tasks.sandbox_courier_step``) and by the sandbox
control endpoint (tests, the demo). Never in production: the sandbox adapter is
refused there (``couriers.courier``)."""

from __future__ import annotations

import uuid

from django.utils import timezone

from hub.errors import Invalid, NotFound

from . import couriers
from .couriers.sandbox import FAIL_STEP, NEXT_STEP, SandboxCourier
from .errors import DeliveryCode, DeliveryError
from .models import Shipment
from .states import TERMINAL

SANDBOX_ACTIONS = ("next", "fail", "repeat")


def sandbox_step(*, shipment_id: int, action: str = "next") -> int:
    """The sandbox courier posts its next event (or a failure, or its last event
    again) to our callback endpoint; returns the HTTP status it got back."""
    if action not in SANDBOX_ACTIONS:
        raise Invalid("操作无效", field="action")
    shipment = Shipment.objects.filter(pk=shipment_id).first()
    if shipment is None or shipment.courier != "sandbox":
        raise NotFound("沙箱配送单")
    try:
        adapter = couriers.courier("sandbox")
    except LookupError as exc:
        raise DeliveryError(DeliveryCode.COURIER_UNKNOWN, courier="sandbox") from exc
    if not isinstance(adapter, SandboxCourier):
        raise DeliveryError(DeliveryCode.COURIER_UNKNOWN, courier="sandbox")
    now = timezone.now()
    if action == "repeat":
        last = shipment.events.order_by("-received_at", "-pk").first()
        if last is None:
            raise DeliveryError(DeliveryCode.TRANSITION_REFUSED, "沙箱快递还没有发送过事件")
        step = (last.courier_status, last.description, last.location)
        event_id, occurred = last.raw_event_id, last.occurred_at
    else:
        step_or_none = FAIL_STEP if action == "fail" else NEXT_STEP.get(shipment.status)
        if step_or_none is None or shipment.status in TERMINAL:
            label = Shipment.Status(shipment.status).label
            raise DeliveryError(DeliveryCode.TRANSITION_REFUSED, f"当前状态为“{label}”，沙箱快递没有下一步")
        step, event_id, occurred = step_or_none, uuid.uuid4().hex, now
    code, description, location = step
    route = adapter.route(
        number=shipment.number,
        waybill_no=shipment.waybill_no,
        code=code,
        description=description,
        location=location,
        occurred_at=occurred,
        event_id=event_id,
    )
    return adapter.push([route]).status_code
