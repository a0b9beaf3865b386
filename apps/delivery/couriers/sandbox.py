"""The sandbox courier: a stand-in for a courier that runs inside the hub.

It signs like the SF open platform (``msgDigest`` over msgData + timestamp +
checkword, :func:`~.sf.digest`) with its own checkword, and moves a booked
shipment the way a courier does: by posting signed route pushes to our own
callback endpoint (``POST /api/v1/delivery/callbacks/sandbox``), so the
shipment goes through exactly the path a real push takes (signature check,
idempotent events, transitions, live update). ``apps.delivery.tasks`` posts
the next step every ``DELIVERY_SANDBOX_STEP_SECONDS``; the sandbox control
endpoint posts one now (next step, a failure, or the last event again).

Never in production: :func:`apps.delivery.couriers.courier` refuses an
adapter marked ``sandbox = True`` when ``settings.PRODUCTION``."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time
import uuid
from typing import Any, ClassVar

import httpx

from .base import Booking, CourierEvent, Parcel, Party
from .sf import OPCODE_STATUS, SfExpress, digest

SH = dt.timezone(dt.timedelta(hours=8))

# One more code than SF: the courier accepted the order (SF reports no such route).
SANDBOX_OPCODES: dict[str, str] = {**OPCODE_STATUS, "SBX10": "accepted"}

# status the shipment is in -> (opCode, description, location) of the next event.
NEXT_STEP: dict[str, tuple[str, str, str]] = {
    "booked": ("SBX10", "快递员已接单，即将上门取件", "医院药房"),
    "accepted": ("50", "顺丰速运 已收取快件", "医院药房"),
    "picked_up": ("36", "快件离开【医院营业点】，已在发往目的地的路上", "中转场"),
    "in_transit": ("80", "已签收，感谢使用顺丰，期待再次为您服务", "收件地址"),
    "failed": ("99", "快件已退回寄件人", "医院药房"),
}
FAIL_STEP = ("70", "派件不成功：多次联系收件人未果", "派送网点")


class SandboxCourier(SfExpress):
    code: ClassVar[str] = "sandbox"
    name: ClassVar[str] = "沙箱快递"
    sandbox: ClassVar[bool] = True
    opcodes = SANDBOX_OPCODES

    def __init__(
        self,
        *,
        checkword: str = "",
        callback_base_url: str = "",
        transport: httpx.BaseTransport | None = None,
        callback_max_age_seconds: int = 900,
    ) -> None:
        if not checkword:
            from django.conf import settings

            checkword = hmac.new(settings.SANDBOX_SECRET.encode(), b"delivery.sandbox", hashlib.sha256).hexdigest()[:32]
        if transport is None and not callback_base_url:
            # Embedded demo and tests: post to our own Django app in this process.
            from django.core.handlers.wsgi import WSGIHandler

            transport = httpx.WSGITransport(app=WSGIHandler())
        super().__init__(
            base_url=callback_base_url or "http://127.0.0.1",
            checkword=checkword,
            transport=transport,
            callback_max_age_seconds=callback_max_age_seconds,
        )

    def book(self, parcel: Parcel, sender: Party, recipient: Party) -> Booking:
        return Booking(waybill_no="SBX" + uuid.uuid4().hex[:12].upper())

    def cancel(self, parcel: Parcel) -> None:
        return None

    def track(self, parcel: Parcel) -> list[CourierEvent]:
        return []  # the sandbox pushes everything it knows

    def push_form(self, routes: list[dict[str, Any]], *, timestamp: str | None = None) -> dict[str, str]:
        msg_data = json.dumps({"Body": {"WaybillRoute": routes}}, ensure_ascii=False, separators=(",", ":"))
        ts = timestamp or str(int(time.time()))
        return {
            "partnerID": "SANDBOX",
            "requestID": uuid.uuid4().hex,
            "serviceCode": "RoutePushService",
            "timestamp": ts,
            "msgDigest": digest(msg_data, ts, self.checkword),
            "msgData": msg_data,
        }

    @staticmethod
    def route(
        *,
        number: str,
        waybill_no: str,
        code: str,
        description: str,
        location: str,
        occurred_at: dt.datetime,
        event_id: str = "",
    ) -> dict[str, Any]:
        return {
            "id": event_id or uuid.uuid4().hex,
            "mailno": waybill_no,
            "orderid": number,
            "opCode": code,
            "remark": description,
            "acceptAddress": location,
            "acceptTime": occurred_at.astimezone(SH).strftime("%Y-%m-%d %H:%M:%S"),
            "reasonCode": "",
            "reasonName": "",
        }

    def push(self, routes: list[dict[str, Any]]) -> httpx.Response:
        """Post a signed route push to our callback endpoint (as the courier would)."""
        return self.http.post("/api/v1/delivery/callbacks/sandbox", data=self.push_form(routes))
