"""SF Express open platform (丰桥, ``/std/service``) adapter.

Every request is a form POST of the common parameters ``partnerID``,
``requestID``, ``serviceCode``, ``timestamp``, ``msgDigest`` and ``msgData``
(the JSON of the service). The digest, as in SF's published SDK
(SF-CSIM-EXPRESS-SDK V2.0, ``callExpressRequest.py``)::

    msgDigest = base64(md5(urlencode_plus(msgData + timestamp + checkWord)))

(URL-encoded as ``quote_plus`` / Java ``URLEncoder.encode`` does, then MD5 of the
UTF-8 bytes, then standard Base64.) Services used: ``EXP_RECE_CREATE_ORDER``
(下订单), ``EXP_RECE_UPDATE_ORDER`` with ``dealType`` 2 (取消),
``EXP_RECE_SEARCH_ROUTES`` (路由查询). The answer envelope carries
``apiResultCode`` ("A1000" = accepted by the gateway) and ``apiResultData``
(a JSON string with ``success``, ``errorCode``, ``msgData``).

Route push (路由推送) arrives at our callback as the same common parameters,
signed the same way with our checkword, ``msgData`` holding
``{"Body": {"WaybillRoute": [...]}}``; we answer
``{"return_code": "0000", "return_msg": "成功"}``.

What SF receives of the recipient: the masked name (张*), the mobile number in
``mobile`` only (SF needs a reachable number to deliver; no free-text field
carries it), province / city / county and the street address. The cargo is
:data:`~.base.GOODS_NAME`; no remark, no reference to the source."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import time
import urllib.parse
import uuid
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

SH = dt.timezone(dt.timedelta(hours=8))

# SF route opCodes -> our status. Codes not listed are stored as history only.
OPCODE_STATUS: dict[str, str] = {
    "50": "picked_up",  # 顺丰速运 已收取快件
    "54": "picked_up",  # 上门收件
    "30": "in_transit",  # 快件在中转场完成分拣
    "31": "in_transit",  # 快件到达
    "36": "in_transit",  # 快件离开，已在发往...的路上
    "44": "in_transit",  # 正在派送途中
    "204": "in_transit",  # 派送中
    "80": "delivered",  # 已签收
    "8000": "delivered",  # 已签收（终态）
    "70": "failed",  # 派件不成功
    "99": "returned",  # 已退回寄件人
}


def digest(msg_data: str, timestamp: str, checkword: str) -> str:
    """SF's ``msgDigest``: base64(md5(quote_plus(msgData + timestamp + checkWord)))."""
    encoded = urllib.parse.quote_plus(msg_data + timestamp + checkword)
    # MD5 is SF's protocol, not our choice.
    return base64.b64encode(hashlib.md5(encoded.encode("utf-8")).digest()).decode()  # noqa: S324


def beijing_time(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=SH).astimezone(dt.UTC)


class SfExpress(Courier):
    code: ClassVar[str] = "sf"
    name: ClassVar[str] = "顺丰速运"
    opcodes: ClassVar[Mapping[str, str]] = OPCODE_STATUS

    def __init__(
        self,
        *,
        base_url: str = "https://sfapi.sf-express.com",
        partner_id: str = "",
        checkword: str = "",
        monthly_card: str = "",
        express_type: int = 1,
        callback_max_age_seconds: int = 900,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(base_url=base_url, transport=transport)
        self.partner_id = partner_id
        self.checkword = checkword
        self.monthly_card = monthly_card
        self.express_type = express_type
        self.callback_max_age_seconds = callback_max_age_seconds

    # --- requests ---------------------------------------------------------------------

    def _call(self, service: str, msg: dict[str, Any]) -> dict[str, Any]:
        msg_data = json.dumps(msg, ensure_ascii=False, separators=(",", ":"))
        timestamp = str(int(time.time()))
        form = {
            "partnerID": self.partner_id,
            "requestID": uuid.uuid4().hex,
            "serviceCode": service,
            "timestamp": timestamp,
            "msgDigest": digest(msg_data, timestamp, self.checkword),
            "msgData": msg_data,
        }
        response = self._post("/std/service", data=form)
        try:
            envelope = response.json()
        except ValueError as exc:
            raise CourierFailed("sf.bad_answer", "顺丰接口返回了无法识别的数据") from exc
        if envelope.get("apiResultCode") != "A1000":
            raise CourierFailed(f"sf.{envelope.get('apiResultCode', 'error')}", str(envelope.get("apiErrorMsg") or ""))
        try:
            result = json.loads(envelope.get("apiResultData") or "{}")
        except ValueError as exc:
            raise CourierFailed("sf.bad_answer", "顺丰接口返回了无法识别的数据") from exc
        if not result.get("success"):
            raise CourierFailed(f"sf.{result.get('errorCode', 'error')}", str(result.get("errorMsg") or ""))
        return dict(result.get("msgData") or {})

    @staticmethod
    def _contact(party: Party, contact_type: int) -> dict[str, Any]:
        row: dict[str, Any] = {
            "contactType": contact_type,
            "contact": party.courier_name if contact_type == 2 else party.name,
            "mobile": party.phone,
            "country": "CN",
            "province": party.province,
            "city": party.city,
            "county": party.district,
            "address": party.address,
        }
        if party.company:
            row["company"] = party.company
        return row

    def order_message(self, parcel: Parcel, sender: Party, recipient: Party) -> dict[str, Any]:
        msg: dict[str, Any] = {
            "language": "zh-CN",
            "orderId": parcel.number,
            "cargoDetails": [{"name": GOODS_NAME, "count": 1, "unit": "件", "weight": parcel.weight_kg}],
            "contactInfoList": [self._contact(sender, 1), self._contact(recipient, 2)],
            "expressTypeId": self.express_type,
            "payMethod": 1,
            "parcelQty": 1,
            "isGenWaybillNo": 1,
        }
        if self.monthly_card:
            msg["monthlyCard"] = self.monthly_card
        return msg

    def book(self, parcel: Parcel, sender: Party, recipient: Party) -> Booking:
        result = self._call("EXP_RECE_CREATE_ORDER", self.order_message(parcel, sender, recipient))
        waybills = result.get("waybillNoInfoList") or []
        waybill = next((w.get("waybillNo") for w in waybills if w.get("waybillType") in (1, "1")), None)
        if not waybill:
            raise CourierFailed("sf.no_waybill", "顺丰未返回运单号")
        return Booking(waybill_no=str(waybill))

    def cancel(self, parcel: Parcel) -> None:
        self._call("EXP_RECE_UPDATE_ORDER", {"orderId": parcel.number, "dealType": 2})

    def track(self, parcel: Parcel) -> list[CourierEvent]:
        result = self._call(
            "EXP_RECE_SEARCH_ROUTES",
            {"language": "0", "trackingType": "1", "trackingNumber": [parcel.waybill_no], "methodType": "1"},
        )
        events = []
        for resp in result.get("routeResps") or []:
            for route in resp.get("routes") or []:
                code = str(route.get("opCode", ""))
                events.append(
                    CourierEvent(
                        number=parcel.number,
                        waybill_no=str(resp.get("mailNo", parcel.waybill_no)),
                        # The query has no event id: the code and the time identify the event.
                        event_id=f"route:{code}:{route.get('acceptTime', '')}",
                        status=self.opcodes.get(code, ""),
                        courier_status=code,
                        description=str(route.get("remark", ""))[:300],
                        location=str(route.get("acceptAddress", ""))[:100],
                        occurred_at=beijing_time(str(route.get("acceptTime"))),
                    )
                )
        return events

    # --- route push -------------------------------------------------------------------

    def verify_form(self, body: bytes) -> dict[str, Any]:
        """Check the digest and the timestamp of a pushed form; return its ``msgData``."""
        try:
            form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode("utf-8"), strict_parsing=True).items()}
        except (UnicodeDecodeError, ValueError) as exc:
            raise CourierRejected("sf.malformed", "推送内容无法解析") from exc
        msg_data, timestamp, signature = form.get("msgData", ""), form.get("timestamp", ""), form.get("msgDigest", "")
        if not msg_data or not timestamp or not signature:
            raise CourierRejected("sf.malformed", "推送缺少 msgData / timestamp / msgDigest")
        if not hmac.compare_digest(digest(msg_data, timestamp, self.checkword), signature):
            raise CourierRejected("sf.bad_signature", "推送签名不正确")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp[:10])) > self.callback_max_age_seconds:
            raise CourierRejected("sf.stale_timestamp", "推送时间戳已过期")
        try:
            data = json.loads(msg_data)
        except ValueError as exc:
            raise CourierRejected("sf.malformed", "msgData 不是 JSON") from exc
        if not isinstance(data, dict):
            raise CourierRejected("sf.malformed", "msgData 不是对象")
        return data

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> list[CourierEvent]:
        data = self.verify_form(body)
        routes = (data.get("Body") or {}).get("WaybillRoute") if isinstance(data.get("Body"), dict) else None
        if not isinstance(routes, list) or not routes:
            raise CourierRejected("sf.malformed", "推送没有路由")
        events = []
        for route in routes:
            try:
                code = str(route["opCode"])
                events.append(
                    CourierEvent(
                        number=str(route.get("orderid", "")),
                        waybill_no=str(route["mailno"]),
                        event_id=str(route["id"]),
                        status=self.opcodes.get(code, ""),
                        courier_status=code,
                        description=str(route.get("remark", ""))[:300],
                        location=str(route.get("acceptAddress", ""))[:100],
                        occurred_at=beijing_time(str(route["acceptTime"])),
                    )
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise CourierRejected("sf.malformed", "路由字段不完整") from exc
        return events

    def callback_answer(self) -> CallbackAnswer:
        return CallbackAnswer(json.dumps({"return_code": "0000", "return_msg": "成功"}, ensure_ascii=False).encode())
