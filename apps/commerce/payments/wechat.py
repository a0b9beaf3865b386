"""WeChat Pay API v3 (直连商户): JSAPI / mini-program prepay, notify verification and
decryption, query, close, refund, trade bill.

Wire format (pay.weixin.qq.com/doc/v3, checked against wechatpay-apiv3/wechatpay-go):

- every request carries ``Authorization: WECHATPAY2-SHA256-RSA2048 mchid="..",nonce_str="..",
  signature="..",timestamp="..",serial_no=".."``, the signature an RSA-SHA256 (PKCS#1 v1.5)
  over ``METHOD\\nURL\\nTIMESTAMP\\nNONCE\\nBODY\\n`` (URL: absolute path and query);
- answers and notifications are signed by the platform key named by ``Wechatpay-Serial``
  (a platform certificate serial or a ``PUB_KEY_ID_...``) over
  ``TIMESTAMP\\nNONCE\\nBODY\\n`` in ``Wechatpay-Signature``;
- a notification's ``resource`` is AEAD_AES_256_GCM with the APIv3 key (nonce and
  associated_data in the clear);
- amounts are integer fen, times RFC 3339 with the +08:00 offset.

The base URL and the transport are injectable, so the same class talks to
api.mch.weixin.qq.com and to the sandbox gateway (``sandbox.py``)."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import logging
import time
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from django.core.cache import cache

from . import crypto
from .base import (
    BillLine,
    Channel,
    NoticeStatus,
    NotifyRejected,
    PaymentNotice,
    PrepayRequest,
    PrepayResult,
    RefundResult,
    check_order_no,
)
from .errors import PaymentsCode, PaymentsError
from .transport import HttpAnswer, Transport, UrllibTransport

log = logging.getLogger("apps.commerce.payments")

BEIJING = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")
AUTH_SCHEMA = "WECHATPAY2-SHA256-RSA2048"
USER_AGENT = "hospital-hub-payments/1 (+WechatPay-APIv3)"
NOTIFY_WINDOW_SECONDS = 300

# Refund status of the v3 refund API and notifications -> RefundResult.status.
_REFUND_STATUS = {"SUCCESS": "success", "PROCESSING": "processing", "CLOSED": "failed", "ABNORMAL": "failed"}


def _fen(value: object) -> int:
    """An amount in fen as the v3 JSON has it: an integer, never a float or a string."""
    if type(value) is not int:
        raise ValueError(f"not an amount in fen: {value!r}")
    return value


def rfc3339(moment: dt.datetime) -> str:
    if moment.tzinfo is None:
        raise PaymentsError(PaymentsCode.BAD_REQUEST, field="expires_at")
    return moment.astimezone(BEIJING).replace(microsecond=0).isoformat()


def parse_time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value).astimezone(dt.UTC)


def request_message(method: str, url: str, timestamp: str, nonce: str, body: str) -> str:
    return f"{method}\n{url}\n{timestamp}\n{nonce}\n{body}\n"


def answer_message(timestamp: str, nonce: str, body: bytes) -> bytes:
    return f"{timestamp}\n{nonce}\n".encode() + body + b"\n"


def pay_sign_message(app_id: str, timestamp: str, nonce: str, package: str) -> str:
    return f"{app_id}\n{timestamp}\n{nonce}\n{package}\n"


def parse_authorization(value: str) -> dict[str, str]:
    """The fields of a ``WECHATPAY2-SHA256-RSA2048 k="v",...`` header ({} if it is not one)."""
    schema, _, rest = value.partition(" ")
    if schema != AUTH_SCHEMA:
        return {}
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, raw = part.strip().partition("=")
        if not sep:
            return {}
        fields[key] = raw.strip().strip('"')
    return fields


class WechatPayV3:
    """One merchant (mchid) and one app id (公众号 or 小程序) on WeChat Pay API v3."""

    sandbox = False
    channels = frozenset({Channel.WECHAT_JSAPI, Channel.WECHAT_MINI})

    def __init__(
        self,
        *,
        name: str = "wechat",
        merchant_id: str,
        app_id: str,
        merchant_serial: str,
        merchant_private_key: str,
        apiv3_key: str,
        platform_keys: Mapping[str, str],
        base_url: str = "https://api.mch.weixin.qq.com",
        refund_notify_url: str = "",
        merchant_name: str = "",
        transport: Transport | None = None,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
        notify_window: int = NOTIFY_WINDOW_SECONDS,
    ) -> None:
        self.name = name
        self.merchant_id = merchant_id
        self.app_id = app_id
        self.merchant_name = merchant_name
        self.merchant_serial = merchant_serial
        self._key = crypto.load_private_key(merchant_private_key)
        self._apiv3_key = apiv3_key.encode()
        if len(self._apiv3_key) != 32:
            raise ValueError("the APIv3 key is 32 bytes")
        # serial (certificate serial, upper-case hex, or PUB_KEY_ID_...) -> public key
        self._platform = {serial.upper(): crypto.load_public_key(pem) for serial, pem in platform_keys.items()}
        self.base_url = base_url.rstrip("/")
        self.refund_notify_url = refund_notify_url
        self.transport: Transport = transport or UrllibTransport()
        self.timeout = timeout
        self.clock = clock
        self.notify_window = notify_window

    # --- signing ---------------------------------------------------------------------

    def authorization(self, method: str, url: str, body: str, *, timestamp: str = "", nonce: str = "") -> str:
        """The ``Authorization`` header of a request to ``url`` (absolute path and query)."""
        timestamp = timestamp or str(int(self.clock()))
        nonce = nonce or crypto.nonce_str()
        signature = crypto.sign_sha256_rsa(self._key, request_message(method, url, timestamp, nonce, body))
        return (
            f'{AUTH_SCHEMA} mchid="{self.merchant_id}",nonce_str="{nonce}",signature="{signature}",'
            f'timestamp="{timestamp}",serial_no="{self.merchant_serial}"'
        )

    def request_payment_params(self, prepay_id: str, *, timestamp: str = "", nonce: str = "") -> dict[str, str]:
        """The parameters of ``wx.requestPayment`` / ``WeixinJSBridge getBrandWCPayRequest``."""
        timestamp = timestamp or str(int(self.clock()))
        nonce = nonce or crypto.nonce_str()
        package = f"prepay_id={prepay_id}"
        return {
            "appId": self.app_id,
            "timeStamp": timestamp,
            "nonceStr": nonce,
            "package": package,
            "signType": "RSA",
            "paySign": crypto.sign_sha256_rsa(self._key, pay_sign_message(self.app_id, timestamp, nonce, package)),
        }

    # --- verification ----------------------------------------------------------------

    def verify_signed(self, headers: Mapping[str, str], body: bytes) -> PaymentsCode | None:
        """None when ``body`` carries a valid platform signature within the window, else why not."""
        h = {k.lower(): v for k, v in headers.items()}
        serial = h.get("wechatpay-serial", "").strip()
        timestamp = h.get("wechatpay-timestamp", "").strip()
        nonce = h.get("wechatpay-nonce", "").strip()
        signature = h.get("wechatpay-signature", "").strip()
        if not (serial and timestamp and nonce and signature):
            return PaymentsCode.BAD_SIGNATURE
        key = self._platform.get(serial.upper())
        if key is None:
            return PaymentsCode.UNKNOWN_SERIAL
        if not timestamp.isdigit() or abs(self.clock() - int(timestamp)) > self.notify_window:
            return PaymentsCode.STALE_TIMESTAMP
        if not crypto.verify_sha256_rsa(key, answer_message(timestamp, nonce, body), signature):
            return PaymentsCode.BAD_SIGNATURE
        return None

    def _claim_nonce(self, headers: Mapping[str, str]) -> None:
        nonce = next((v for k, v in headers.items() if k.lower() == "wechatpay-nonce"), "").strip()
        key = f"payments:nonce:{self.name}:{hashlib.sha256(nonce.encode()).hexdigest()}"
        if not cache.add(key, 1, timeout=2 * self.notify_window + 60):
            raise NotifyRejected(PaymentsCode.REPLAYED_NONCE)

    def decrypt_resource(self, resource: Mapping[str, Any]) -> dict[str, Any]:
        if resource.get("algorithm") != "AEAD_AES_256_GCM":
            raise NotifyRejected(PaymentsCode.DECRYPT_FAILED, reason="algorithm")
        try:
            plain = crypto.aes_gcm_decrypt(
                self._apiv3_key,
                str(resource.get("nonce", "")),
                str(resource.get("associated_data", "")),
                str(resource.get("ciphertext", "")),
            )
            data = json.loads(plain)
        except (crypto.DecryptError, ValueError) as exc:
            raise NotifyRejected(PaymentsCode.DECRYPT_FAILED) from exc
        if not isinstance(data, dict):
            raise NotifyRejected(PaymentsCode.DECRYPT_FAILED, reason="not_an_object")
        return data

    def parse_notify(self, headers: Mapping[str, str], body: bytes) -> PaymentNotice:
        """A payment (TRANSACTION.SUCCESS) or refund (REFUND.*) notification, verified and decrypted.

        Order: platform key by serial, timestamp window, signature, nonce claimed once
        (SET NX with a TTL in the cache, Redis wherever it runs), then the resource."""
        refused = self.verify_signed(headers, body)
        if refused is not None:
            log.warning("wechat pay notify refused (%s) on %s", refused, self.name)
            if refused == PaymentsCode.UNKNOWN_SERIAL:
                serial = next((v for k, v in headers.items() if k.lower() == "wechatpay-serial"), "")
                raise NotifyRejected(refused, serial=serial.strip()[:64])
            raise NotifyRejected(refused)
        try:
            envelope = json.loads(body)
            event = str(envelope["event_type"])
            notice_id = str(envelope["id"])
            resource = envelope["resource"]
            if not isinstance(resource, dict):
                raise TypeError(type(resource).__name__)
        except (ValueError, KeyError, TypeError) as exc:
            raise NotifyRejected(PaymentsCode.MALFORMED_NOTIFY) from exc
        self._claim_nonce(headers)
        data = self.decrypt_resource(resource)
        try:
            if event == "TRANSACTION.SUCCESS":
                if data.get("trade_state") != "SUCCESS":
                    raise NotifyRejected(PaymentsCode.MALFORMED_NOTIFY, reason="trade_state")
                notice = self._transaction_notice(data, notice_id)
            elif event.startswith("REFUND."):
                notice = self._refund_notice(data, notice_id, event)
            else:
                raise NotifyRejected(PaymentsCode.MALFORMED_NOTIFY, reason="event_type")
        except (KeyError, TypeError, ValueError) as exc:
            raise NotifyRejected(PaymentsCode.MALFORMED_NOTIFY) from exc
        # Refund notifications carry no appid; payment notifications must name ours.
        wrong_app = notice.app_id != self.app_id if notice.status == NoticeStatus.PAID else bool(notice.app_id)
        if notice.merchant_id != self.merchant_id or wrong_app:
            raise NotifyRejected(PaymentsCode.WRONG_MERCHANT)
        return notice

    def _transaction_notice(self, data: Mapping[str, Any], notice_id: str) -> PaymentNotice:
        return PaymentNotice(
            provider=self.name,
            notice_id=notice_id,
            order_no=str(data["out_trade_no"]),
            transaction_id=str(data["transaction_id"]),
            amount_fen=_fen(data["amount"]["total"]),
            merchant_id=str(data["mchid"]),
            app_id=str(data["appid"]),
            status=NoticeStatus.PAID,
            occurred_at=parse_time(str(data["success_time"])),
        )

    def _refund_notice(self, data: Mapping[str, Any], notice_id: str, event: str) -> PaymentNotice:
        ok = event == "REFUND.SUCCESS" and data.get("refund_status") == "SUCCESS"
        when = data.get("success_time") or data.get("create_time")
        return PaymentNotice(
            provider=self.name,
            notice_id=notice_id,
            order_no=str(data["out_trade_no"]),
            transaction_id=str(data["transaction_id"]),
            amount_fen=_fen(data["amount"]["total"]),
            merchant_id=str(data["mchid"]),
            app_id="",  # refund notifications carry no app id
            status=NoticeStatus.REFUNDED if ok else NoticeStatus.REFUND_FAILED,
            occurred_at=parse_time(str(when)) if when else dt.datetime.now(dt.UTC),
            refund_no=str(data["out_refund_no"]),
            refund_amount_fen=_fen(data["amount"]["refund"]),
        )

    def notify_ack(self, ok: bool) -> tuple[int, str, bytes]:
        """Success: 204 without a body; failure: 5XX with ``{"code":"FAIL","message":..}`` (v3 docs)."""
        if ok:
            return 204, "application/json", b""
        return 500, "application/json", json.dumps({"code": "FAIL", "message": "失败"}, ensure_ascii=False).encode()

    # --- calls -----------------------------------------------------------------------

    def _send(self, method: str, url_path: str, payload: Mapping[str, Any] | None) -> HttpAnswer:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")) if payload is not None else ""
        full = self.base_url + url_path
        signed_url = urlsplit(full).path + (f"?{urlsplit(full).query}" if urlsplit(full).query else "")
        headers = {
            "Authorization": self.authorization(method, signed_url, body),
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        if payload is not None:
            headers["Content-Type"] = "application/json"
        return self.transport.request(
            method, full, headers=headers, body=body.encode() if payload is not None else None, timeout=self.timeout
        )

    def _call(self, method: str, url_path: str, payload: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Send, verify the platform signature of a 2xx answer and decode it; map failures
        to ``payments.gateway_*``. A 204 answers {}."""
        answer = self._send(method, url_path, payload)
        if answer.status >= 500 or answer.status == 429:
            log.warning("wechat pay %s %s answered %s", method, url_path.split("?")[0], answer.status)
            raise PaymentsError(PaymentsCode.GATEWAY_UNAVAILABLE, gateway_status=answer.status)
        if answer.status >= 300:
            try:
                err = json.loads(answer.body)
                gateway_code = str(err.get("code", ""))
            except (ValueError, AttributeError) as exc:
                raise PaymentsError(PaymentsCode.GATEWAY_BAD_RESPONSE, gateway_status=answer.status) from exc
            raise PaymentsError(PaymentsCode.GATEWAY_ERROR, gateway_status=answer.status, gateway_code=gateway_code)
        refused = self.verify_signed(answer.headers, answer.body)
        if refused is not None:
            log.warning("wechat pay answer to %s %s refused (%s)", method, url_path.split("?")[0], refused)
            raise PaymentsError(PaymentsCode.GATEWAY_BAD_RESPONSE, reason=str(refused))
        if answer.status == 204 or not answer.body:
            return {}
        try:
            data = json.loads(answer.body)
        except ValueError as exc:
            raise PaymentsError(PaymentsCode.GATEWAY_BAD_RESPONSE, gateway_status=answer.status) from exc
        if not isinstance(data, dict):
            raise PaymentsError(PaymentsCode.GATEWAY_BAD_RESPONSE, gateway_status=answer.status)
        return data

    def prepay(self, req: PrepayRequest) -> PrepayResult:
        check_order_no(req.order_no)
        if req.channel not in self.channels:
            raise PaymentsError(PaymentsCode.BAD_REQUEST, field="channel")
        if req.amount_fen <= 0:
            raise PaymentsError(PaymentsCode.BAD_REQUEST, field="amount_fen")
        openid = req.payer_openid or self._default_openid()
        if not openid:
            raise PaymentsError(PaymentsCode.BAD_REQUEST, field="payer_openid")
        payload = {
            "appid": self.app_id,
            "mchid": self.merchant_id,
            "description": req.description.encode()[:127].decode("utf-8", "ignore"),
            "out_trade_no": req.order_no,
            "time_expire": rfc3339(req.expires_at),
            "notify_url": req.notify_url,
            "amount": {"total": req.amount_fen, "currency": "CNY"},
            "payer": {"openid": openid},
        }
        data = self._call("POST", "/v3/pay/transactions/jsapi", payload)
        prepay_id = data.get("prepay_id")
        if not isinstance(prepay_id, str) or not prepay_id:
            raise PaymentsError(PaymentsCode.GATEWAY_BAD_RESPONSE, field="prepay_id")
        return PrepayResult(provider=self.name, client_params=self._client_params(prepay_id), provider_ref=prepay_id)

    def _default_openid(self) -> str:
        return ""

    def _client_params(self, prepay_id: str) -> dict[str, str]:
        return self.request_payment_params(prepay_id)

    def query(self, order_no: str) -> PaymentNotice | None:
        """The order's state: a PAID notice when paid (SUCCESS, or REFUND: paid then refunded),
        None when not paid (NOTPAY, CLOSED, REVOKED, USERPAYING, PAYERROR, or unknown)."""
        check_order_no(order_no)
        try:
            data = self._call(
                "GET", f"/v3/pay/transactions/out-trade-no/{quote(order_no)}?{urlencode({'mchid': self.merchant_id})}"
            )
        except PaymentsError as exc:
            if exc.code == PaymentsCode.GATEWAY_ERROR and exc.detail.get("gateway_code") == "ORDER_NOT_EXIST":
                return None
            raise
        if data.get("trade_state") not in {"SUCCESS", "REFUND"}:
            return None
        try:
            notice = self._transaction_notice(data, f"query:{data['transaction_id']}")
        except (KeyError, TypeError, ValueError) as exc:
            raise PaymentsError(PaymentsCode.GATEWAY_BAD_RESPONSE) from exc
        return notice

    def close(self, order_no: str) -> None:
        check_order_no(order_no)
        self._call("POST", f"/v3/pay/transactions/out-trade-no/{quote(order_no)}/close", {"mchid": self.merchant_id})

    def refund(self, *, order_no: str, refund_no: str, amount_fen: int, total_fen: int, reason: str) -> RefundResult:
        check_order_no(order_no)
        check_order_no(refund_no)
        if not 0 < amount_fen <= total_fen:
            raise PaymentsError(PaymentsCode.BAD_REQUEST, field="amount_fen")
        payload: dict[str, Any] = {
            "out_trade_no": order_no,
            "out_refund_no": refund_no,
            "reason": reason[:80],
            "amount": {"refund": amount_fen, "total": total_fen, "currency": "CNY"},
        }
        if self.refund_notify_url:
            payload["notify_url"] = self.refund_notify_url
        data = self._call("POST", "/v3/refund/domestic/refunds", payload)
        status = _REFUND_STATUS.get(str(data.get("status")))
        if status is None or not data.get("refund_id"):
            raise PaymentsError(PaymentsCode.GATEWAY_BAD_RESPONSE, field="status")
        return RefundResult(refund_no=refund_no, provider_refund_id=str(data["refund_id"]), status=status)

    def bill(self, day: dt.date) -> list[BillLine]:
        """The day's trade bill (Beijing day): charges and refunds. [] when the gateway has none."""
        try:
            query = urlencode({"bill_date": day.isoformat(), "bill_type": "ALL"})
            data = self._call("GET", f"/v3/bill/tradebill?{query}")
        except PaymentsError as exc:
            if exc.code == PaymentsCode.GATEWAY_ERROR and exc.detail.get("gateway_code") == "NO_STATEMENT_EXIST":
                return []
            raise
        url = str(data.get("download_url", ""))
        base, target = urlsplit(self.base_url), urlsplit(url)
        # The bill is fetched with our Authorization: only from the gateway's own host.
        if (target.scheme, target.netloc) != (base.scheme, base.netloc):
            raise PaymentsError(PaymentsCode.GATEWAY_BAD_RESPONSE, field="download_url")
        signed_url = target.path + (f"?{target.query}" if target.query else "")
        answer = self.transport.request(
            "GET",
            url,
            headers={"Authorization": self.authorization("GET", signed_url, ""), "User-Agent": USER_AGENT},
            body=None,
            timeout=self.timeout,
        )
        if answer.status >= 500:
            raise PaymentsError(PaymentsCode.GATEWAY_UNAVAILABLE, gateway_status=answer.status)
        if answer.status != 200:
            raise PaymentsError(PaymentsCode.GATEWAY_ERROR, gateway_status=answer.status, gateway_code="")
        # The file is not signed; its SHA1 is in the signed answer above.
        if str(data.get("hash_type", "SHA1")).upper() == "SHA1" and data.get("hash_value"):
            if hashlib.sha1(answer.body).hexdigest() != str(data["hash_value"]).lower():  # noqa: S324
                raise PaymentsError(PaymentsCode.GATEWAY_BAD_RESPONSE, field="hash_value")
        return parse_trade_bill(answer.body)


def _yuan_to_fen(text: str) -> int:
    try:
        value = Decimal(text.strip() or "0") * 100
        if value != value.to_integral_value():
            raise InvalidOperation(text)
        return int(value)
    except InvalidOperation as exc:
        raise PaymentsError(PaymentsCode.GATEWAY_BAD_RESPONSE, field="amount") from exc


def parse_trade_bill(raw: bytes) -> list[BillLine]:
    """The v3 trade bill CSV (bill_type ALL): a header row, rows whose every field starts
    with a backtick, then the totals (总交易单数...). Amounts are yuan with two decimals;
    times are Beijing time."""
    text = raw.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return []
    header = [h.strip().lstrip("\ufeff") for h in rows[0]]
    index = {name: i for i, name in enumerate(header)}
    needed = ("交易时间", "微信订单号", "商户订单号", "交易状态")
    if any(n not in index for n in needed):
        raise PaymentsError(PaymentsCode.GATEWAY_BAD_RESPONSE, field="bill_header")
    lines: list[BillLine] = []
    for row in rows[1:]:
        if not row or row[0].strip().startswith("总"):
            break
        cells = [c.strip().lstrip("`") for c in row]

        def cell(name: str, cells: list[str] = cells) -> str:
            i = index.get(name)
            return cells[i] if i is not None and i < len(cells) else ""

        try:
            when = dt.datetime.strptime(cell("交易时间"), "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
        except ValueError as exc:
            raise PaymentsError(PaymentsCode.GATEWAY_BAD_RESPONSE, field="bill_time") from exc
        state = cell("交易状态")
        if state == "REFUND":
            amount = cell("申请退款金额") or cell("退款金额")
            lines.append(
                BillLine(
                    order_no=cell("商户订单号"),
                    transaction_id=cell("微信订单号"),
                    kind="refund",
                    amount_fen=_yuan_to_fen(amount),
                    occurred_at=when.astimezone(dt.UTC),
                    refund_no=cell("商户退款单号") or None,
                )
            )
        elif state == "SUCCESS":
            amount = cell("订单金额") or cell("应结订单金额")
            lines.append(
                BillLine(
                    order_no=cell("商户订单号"),
                    transaction_id=cell("微信订单号"),
                    kind="charge",
                    amount_fen=_yuan_to_fen(amount),
                    occurred_at=when.astimezone(dt.UTC),
                )
            )
    return lines


TRADE_BILL_HEADER = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,"
    "货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,"
    "商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注"
)
