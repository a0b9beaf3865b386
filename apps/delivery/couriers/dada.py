"""Dada (达达快送) open platform adapter.

Requests are JSON POSTs of ``app_key``, ``source_id``, ``format`` ("json"),
``v`` ("1.0"), ``timestamp``, ``body`` (the service's JSON as a string) and
``signature``, computed as in Dada's documentation::

    signature = upper(md5(app_secret + concat(key + value for key in sorted(params)) + app_secret))

over every parameter except ``signature``. Services: ``/api/order/addOrder``
(新增订单; ``origin_id`` is our shipment number, which we also keep as the
waybill), ``/api/order/formalCancel``, ``/api/order/status/query``. Answers
carry ``status`` ("success" / "fail"), ``code`` and ``msg``.

The order status callback (订单状态回调) is a JSON POST whose ``signature`` is
``md5(concat(sorted([client_id, order_id, update_time])))`` (lower-case hex):
Dada's rule uses no secret, so a callback is also only accepted for a
shipment booked with Dada under that ``order_id`` (our unguessable number)
and with a recent ``update_time`` (see ADR 0043). We answer HTTP 200.

What Dada receives of the recipient: ``receiver_name`` masked (张*),
``receiver_phone`` (Dada's rider must reach the recipient; no free-text field
carries it), ``receiver_address`` (region and street), no coordinates yet (ADR 0043);
``info`` (备注) is empty and the goods are
:data:`~.base.GOODS_NAME`."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from .base import (
    GOODS_NAME,
    Booking,
    CallbackAnswer,
    Courier,
    CourierEvent,
    CourierFailed,
    CourierRejected,
    Parcel,
    Party,
)

# Dada order_status -> our status ('' = history only).
STATUS_MAP: dict[int, tuple[str, str]] = {
    1: ("", "待接单"),
    2: ("accepted", "骑士已接单，待取货"),
    100: ("", "骑士已到店"),
    3: ("in_transit", "骑士已取货，配送中"),
    4: ("delivered", "已送达"),
    5: ("failed", "达达侧已取消"),
    7: ("failed", "订单已过期"),
    8: ("", "指派单"),
    9: ("failed", "妥投异常，物品返回中"),
    10: ("returned", "妥投异常，物品已返回"),
    1000: ("failed", "创建达达运单失败"),
}


def request_signature(params: Mapping[str, Any], app_secret: str) -> str:
    joined = "".join(f"{key}{params[key]}" for key in sorted(params) if key != "signature")
    # MD5 is Dada's protocol, not our choice.
    return hashlib.md5(f"{app_secret}{joined}{app_secret}".encode()).hexdigest().upper()  # noqa: S324


def callback_signature(client_id: str, order_id: str, update_time: str) -> str:
    return hashlib.md5("".join(sorted([client_id, order_id, update_time])).encode()).hexdigest()  # noqa: S324


class Dada(Courier):
    code: ClassVar[str] = "dada"
    name: ClassVar[str] = "达达快送"

    def __init__(
        self,
        *,
        base_url: str = "https://newopen.imdada.cn",
        app_key: str = "",
        app_secret: str = "",
        source_id: str = "",
        shop_no: str = "",
        city_code: str = "",
        callback_url: str = "",
        callback_max_age_seconds: int = 86400,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(base_url=base_url, transport=transport)
        self.app_key = app_key
        self.app_secret = app_secret
        self.source_id = source_id
        self.shop_no = shop_no
        self.city_code = city_code
        self.callback_url = callback_url
        self.callback_max_age_seconds = callback_max_age_seconds

    def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        params: dict[str, Any] = {
            "app_key": self.app_key,
            "body": json.dumps(body, ensure_ascii=False, separators=(",", ":")),
            "format": "json",
            "source_id": self.source_id,
            "timestamp": str(int(time.time())),
            "v": "1.0",
        }
        params["signature"] = request_signature(params, self.app_secret)
        response = self._post(
            path,
            content=json.dumps(params, ensure_ascii=False).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            answer = response.json()
        except ValueError as exc:
            raise CourierFailed("dada.bad_answer", "达达接口返回了无法识别的数据") from exc
        if answer.get("status") != "success" or answer.get("code") not in (0, "0"):
            raise CourierFailed(f"dada.{answer.get('code', 'error')}", str(answer.get("msg") or ""))
        result = answer.get("result")
        return result if isinstance(result, dict) else {}

    def order_body(self, parcel: Parcel, recipient: Party) -> dict[str, Any]:
        # No receiver_lat / receiver_lng: the address book has no coordinates (no
        # geocoding service yet). Dada's documentation lists them as required, so a
        # live Dada account needs them added first (ADR 0043, not built).
        body: dict[str, Any] = {
            "shop_no": self.shop_no,
            "origin_id": parcel.number,
            "city_code": self.city_code,
            "cargo_price": 0,
            "is_prepay": 0,
            "receiver_name": recipient.courier_name,
            "receiver_address": f"{recipient.province}{recipient.city}{recipient.district}{recipient.address}",
            "receiver_phone": recipient.phone,
            "callback": self.callback_url,
            "cargo_weight": parcel.weight_kg,
            "info": "",
            "product_list": [{"sku_name": GOODS_NAME, "src_product_no": "", "count": 1, "unit": "件"}],
        }
        return body

    def book(self, parcel: Parcel, sender: Party, recipient: Party) -> Booking:
        self._call("/api/order/addOrder", self.order_body(parcel, recipient))
        return Booking(waybill_no=parcel.number)

    def cancel(self, parcel: Parcel) -> None:
        self._call(
            "/api/order/formalCancel",
            {"order_id": parcel.number, "cancel_reason_id": 4, "cancel_reason": "医院取消配送"},
        )

    def track(self, parcel: Parcel) -> list[CourierEvent]:
        result = self._call("/api/order/status/query", {"order_id": parcel.number})
        code = int(result.get("statusCode", 0) or 0)
        status, label = STATUS_MAP.get(code, ("", str(result.get("statusMsg", ""))))
        updated = str(result.get("updateTime", ""))
        return [
            CourierEvent(
                number=parcel.number,
                waybill_no=parcel.number,
                event_id=f"{parcel.number}:{code}:{updated}",
                status=status,
                courier_status=str(code),
                description=str(result.get("statusMsg") or label)[:300],
                location="",
                occurred_at=dt.datetime.now(dt.UTC),
            )
        ]

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> list[CourierEvent]:
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise CourierRejected("dada.malformed", "回调内容不是 JSON") from exc
        if not isinstance(data, dict):
            raise CourierRejected("dada.malformed", "回调内容不是对象")
        client_id = str(data.get("client_id") or "")
        order_id = str(data.get("order_id") or "")
        update_time = str(data.get("update_time") or "")
        signature = str(data.get("signature") or "")
        if not order_id or not update_time or not signature:
            raise CourierRejected("dada.malformed", "回调缺少 order_id / update_time / signature")
        if not hmac.compare_digest(callback_signature(client_id, order_id, update_time), signature):
            raise CourierRejected("dada.bad_signature", "回调签名不正确")
        if not update_time.isdigit():
            raise CourierRejected("dada.malformed", "update_time 不是时间戳")
        seconds = int(update_time[:10])
        if abs(time.time() - seconds) > self.callback_max_age_seconds:
            raise CourierRejected("dada.stale_timestamp", "回调时间已过期")
        try:
            code = int(data.get("order_status"))  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            raise CourierRejected("dada.malformed", "order_status 无效") from exc
        status, label = STATUS_MAP.get(code, ("", f"状态 {code}"))
        reason = str(data.get("cancel_reason") or "")
        return [
            CourierEvent(
                number=order_id,
                waybill_no=order_id,
                event_id=f"{order_id}:{code}:{update_time}",
                status=status,
                courier_status=str(code),
                description=(f"{label}：{reason}" if reason else label)[:300],
                location="",
                occurred_at=dt.datetime.fromtimestamp(seconds, dt.UTC),
            )
        ]

    def callback_answer(self) -> CallbackAnswer:
        return CallbackAnswer(json.dumps({"status": "ok"}).encode())
