"""Alipay open platform (mini-program payment): ``alipay.trade.create`` for ``my.tradePay``,
asynchronous notify verification, query, close, refund, bill download.

Wire format (opendocs.alipay.com, checked against alipay/alipay-sdk-nodejs-all):

- a request is a form POST to the gateway with the public parameters (``app_id, method,
  format=JSON, charset=utf-8, sign_type=RSA2, timestamp`` in Beijing time, ``version=1.0``,
  ``notify_url``) and ``biz_content`` (JSON); ``sign`` is RSA2 (SHA256withRSA, PKCS#1 v1.5)
  over every non-empty parameter but ``sign``, sorted by name, as ``k=v&k=v`` (raw values);
- the answer is ``{"<method_with_underscores>_response": {...}, "sign": "..."}``, the sign over
  the exact text of the response object; ``code`` 10000 is success;
- an asynchronous notification is a form POST; its ``sign`` covers every non-empty parameter
  but ``sign`` and ``sign_type``, sorted; the answer is the plain text ``success``;
- amounts are yuan strings with two decimals (converted to integer fen here)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import re
import time
import zipfile
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

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
from .transport import Transport, UrllibTransport

log = logging.getLogger("apps.commerce.payments")

BEIJING = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")
SUCCESS = "10000"
_BUYER_ID = re.compile(r"2088\d{12}")


def fen_to_yuan(fen: int) -> str:
    return f"{Decimal(fen) / 100:.2f}"


def yuan_to_fen(text: str) -> int:
    try:
        value = Decimal(str(text).strip()) * 100
        if value != value.to_integral_value():
            raise InvalidOperation
        return int(value)
    except InvalidOperation as exc:
        raise ValueError(f"not a yuan amount: {text!r}") from exc


def beijing(moment: dt.datetime) -> str:
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def parse_beijing(text: str) -> dt.datetime:
    return dt.datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING).astimezone(dt.UTC)


def sign_content(params: Mapping[str, str], *, exclude: frozenset[str] = frozenset({"sign"})) -> str:
    """``k=v&...`` over the non-empty parameters not in ``exclude``, sorted by name."""
    return "&".join(f"{k}={params[k]}" for k in sorted(params) if k not in exclude and params[k] != "")


def response_text(raw: str, key: str) -> str | None:
    """The exact text of ``key``'s object in an answer (what Alipay signed), or None."""
    at = raw.find(f'"{key}"')
    if at < 0:
        return None
    colon = raw.find(":", at + len(key) + 2)
    if colon < 0:
        return None
    start = colon + 1
    while start < len(raw) and raw[start] in " \t\r\n":
        start += 1
    try:
        _, end = json.JSONDecoder().raw_decode(raw, start)
    except ValueError:
        return None
    return raw[start:end]


class AlipayMini:
    """One Alipay mini-program app (app_id) of one seller (merchant_id: the 2088... PID)."""

    sandbox = False
    channels = frozenset({Channel.ALIPAY_MINI})

    def __init__(
        self,
        *,
        name: str = "alipay",
        app_id: str,
        merchant_id: str,
        app_private_key: str,
        alipay_public_key: str,
        base_url: str = "https://openapi.alipay.com/gateway.do",
        bill_hosts: tuple[str, ...] = (".alipay.com",),
        merchant_name: str = "",
        transport: Transport | None = None,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.app_id = app_id
        self.merchant_id = merchant_id
        self.merchant_name = merchant_name
        self._key = crypto.load_private_key(app_private_key)
        self._alipay_key = crypto.load_public_key(alipay_public_key)
        self.base_url = base_url
        self.bill_hosts = bill_hosts
        self.transport: Transport = transport or UrllibTransport()
        self.timeout = timeout
        self.clock = clock

    # --- requests --------------------------------------------------------------------

    def signed_params(self, method: str, biz: Mapping[str, Any], *, notify_url: str = "") -> dict[str, str]:
        params = {
            "app_id": self.app_id,
            "method": method,
            "format": "JSON",
            "charset": "utf-8",
            "sign_type": "RSA2",
            "timestamp": beijing(dt.datetime.fromtimestamp(self.clock(), dt.UTC)),
            "version": "1.0",
            "biz_content": json.dumps(biz, ensure_ascii=False, separators=(",", ":")),
        }
        if notify_url:
            params["notify_url"] = notify_url
        params["sign"] = crypto.sign_sha256_rsa(self._key, sign_content(params))
        return params

    def _call(self, method: str, biz: Mapping[str, Any], *, notify_url: str = "") -> dict[str, Any]:
        params = self.signed_params(method, biz, notify_url=notify_url)
        answer = self.transport.request(
            "POST",
            self.base_url,
            headers={"Content-Type": "application/x-www-form-urlencoded;charset=utf-8", "Accept": "application/json"},
            body=urlencode(params).encode(),
            timeout=self.timeout,
        )
        if answer.status >= 500 or answer.status == 429:
            raise PaymentsError(PaymentsCode.GATEWAY_UNAVAILABLE, gateway_status=answer.status)
        if answer.status != 200:
            raise PaymentsError(PaymentsCode.GATEWAY_ERROR, gateway_status=answer.status, gateway_code="")
        try:
            raw = answer.body.decode("utf-8")
            data = json.loads(raw)
        except ValueError as exc:
            raise PaymentsError(PaymentsCode.GATEWAY_BAD_RESPONSE, gateway_status=answer.status) from exc
        key = method.replace(".", "_") + "_response"
        node = data.get(key) if isinstance(data, dict) else None
        if node is None and isinstance(data, dict):
            node, key = data.get("error_response"), "error_response"
        if not isinstance(node, dict):
            raise PaymentsError(PaymentsCode.GATEWAY_BAD_RESPONSE, gateway_status=answer.status)
        code = str(node.get("code", ""))
        if code == SUCCESS:
            signed = response_text(raw, key)
            signature = data.get("sign")
            if (
                not isinstance(signature, str)
                or signed is None
                or not crypto.verify_sha256_rsa(self._alipay_key, signed, signature)
            ):
                log.warning("alipay answer to %s refused (bad signature)", method)
                raise PaymentsError(PaymentsCode.GATEWAY_BAD_RESPONSE, reason=str(PaymentsCode.BAD_SIGNATURE))
            return node
        if code == "20000":  # 服务不可用
            raise PaymentsError(PaymentsCode.GATEWAY_UNAVAILABLE, gateway_code=str(node.get("sub_code", code)))
        raise PaymentsError(
            PaymentsCode.GATEWAY_ERROR, gateway_status=answer.status, gateway_code=str(node.get("sub_code") or code)
        )

    def prepay(self, req: PrepayRequest) -> PrepayResult:
        check_order_no(req.order_no)
        if req.channel not in self.channels:
            raise PaymentsError(PaymentsCode.BAD_REQUEST, field="channel")
        if req.amount_fen <= 0:
            raise PaymentsError(PaymentsCode.BAD_REQUEST, field="amount_fen")
        if not req.payer_openid:
            raise PaymentsError(PaymentsCode.BAD_REQUEST, field="payer_openid")
        biz: dict[str, Any] = {
            "out_trade_no": req.order_no,
            "total_amount": fen_to_yuan(req.amount_fen),
            "subject": req.description[:256],
            "product_code": "JSAPI_PAY",
            "op_app_id": self.app_id,
            "time_expire": beijing(req.expires_at),
        }
        biz["buyer_id" if _BUYER_ID.fullmatch(req.payer_openid) else "buyer_open_id"] = req.payer_openid
        node = self._call("alipay.trade.create", biz, notify_url=req.notify_url)
        trade_no = node.get("trade_no")
        if not isinstance(trade_no, str) or not trade_no:
            raise PaymentsError(PaymentsCode.GATEWAY_BAD_RESPONSE, field="trade_no")
        return PrepayResult(provider=self.name, client_params={"tradeNO": trade_no}, provider_ref=trade_no)

    # --- notifications ---------------------------------------------------------------

    def verify_fields(self, fields: Mapping[str, str]) -> bool:
        signature = fields.get("sign", "")
        content = sign_content(fields, exclude=frozenset({"sign", "sign_type"}))
        return bool(signature) and crypto.verify_sha256_rsa(self._alipay_key, content, signature)

    def parse_notify(self, headers: Mapping[str, str], body: bytes) -> PaymentNotice:
        """A trade_status_sync notification, verified over its sorted fields.

        No timestamp window or nonce: Alipay re-sends the same signed notification for 25
        hours until it reads ``success``; exactly-once is the order's unique transaction id."""
        try:
            fields = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True))
        except (UnicodeDecodeError, ValueError) as exc:
            raise NotifyRejected(PaymentsCode.MALFORMED_NOTIFY) from exc
        if not self.verify_fields(fields):
            log.warning("alipay notify refused (bad signature) on %s", self.name)
            raise NotifyRejected(PaymentsCode.BAD_SIGNATURE)
        if fields.get("app_id") != self.app_id or fields.get("seller_id") != self.merchant_id:
            raise NotifyRejected(PaymentsCode.WRONG_MERCHANT)
        try:
            status = fields["trade_status"]
            refunded = bool(fields.get("refund_fee")) and fields.get("out_biz_no")
            when = fields.get("gmt_refund") if refunded else fields.get("gmt_payment") or fields.get("gmt_close")
            common: dict[str, Any] = {
                "provider": self.name,
                "notice_id": fields["notify_id"],
                "order_no": fields["out_trade_no"],
                "transaction_id": fields["trade_no"],
                "amount_fen": yuan_to_fen(fields["total_amount"]),
                "merchant_id": fields["seller_id"],
                "app_id": fields["app_id"],
                "occurred_at": parse_beijing(when or fields["notify_time"][:19]),
            }
            if refunded:
                # refund_fee is the total refunded on the trade so far (Alipay's field).
                return PaymentNotice(
                    **common,
                    status=NoticeStatus.REFUNDED,
                    refund_no=fields["out_biz_no"],
                    refund_amount_fen=yuan_to_fen(fields["refund_fee"]),
                )
            if status in {"TRADE_SUCCESS", "TRADE_FINISHED"}:
                return PaymentNotice(**common, status=NoticeStatus.PAID)
            if status == "TRADE_CLOSED":
                return PaymentNotice(**common, status=NoticeStatus.CLOSED)
        except (KeyError, ValueError) as exc:
            raise NotifyRejected(PaymentsCode.MALFORMED_NOTIFY) from exc
        raise NotifyRejected(PaymentsCode.MALFORMED_NOTIFY, reason="trade_status")

    def notify_ack(self, ok: bool) -> tuple[int, str, bytes]:
        return 200, "text/plain; charset=utf-8", b"success" if ok else b"failure"

    # --- queries and changes ---------------------------------------------------------

    def query(self, order_no: str) -> PaymentNotice | None:
        check_order_no(order_no)
        try:
            node = self._call("alipay.trade.query", {"out_trade_no": order_no})
        except PaymentsError as exc:
            if exc.code == PaymentsCode.GATEWAY_ERROR and exc.detail.get("gateway_code") == "ACQ.TRADE_NOT_EXIST":
                return None
            raise
        status = node.get("trade_status")
        # TRADE_CLOSED after a full refund still has the payment date: it was paid.
        if status not in {"TRADE_SUCCESS", "TRADE_FINISHED"} and not (
            status == "TRADE_CLOSED" and node.get("send_pay_date")
        ):
            return None
        try:
            return PaymentNotice(
                provider=self.name,
                notice_id=f"query:{node['trade_no']}",
                order_no=str(node["out_trade_no"]),
                transaction_id=str(node["trade_no"]),
                amount_fen=yuan_to_fen(str(node["total_amount"])),
                merchant_id=self.merchant_id,
                app_id=self.app_id,
                status=NoticeStatus.PAID,
                occurred_at=parse_beijing(str(node.get("send_pay_date") or beijing(dt.datetime.now(dt.UTC)))),
            )
        except (KeyError, ValueError) as exc:
            raise PaymentsError(PaymentsCode.GATEWAY_BAD_RESPONSE) from exc

    def close(self, order_no: str) -> None:
        check_order_no(order_no)
        try:
            self._call("alipay.trade.close", {"out_trade_no": order_no})
        except PaymentsError as exc:
            # Nothing to close: the buyer never opened the cashier.
            if exc.code == PaymentsCode.GATEWAY_ERROR and exc.detail.get("gateway_code") == "ACQ.TRADE_NOT_EXIST":
                return
            raise

    def refund(self, *, order_no: str, refund_no: str, amount_fen: int, total_fen: int, reason: str) -> RefundResult:
        check_order_no(order_no)
        check_order_no(refund_no)
        if not 0 < amount_fen <= total_fen:
            raise PaymentsError(PaymentsCode.BAD_REQUEST, field="amount_fen")
        node = self._call(
            "alipay.trade.refund",
            {
                "out_trade_no": order_no,
                "refund_amount": fen_to_yuan(amount_fen),
                "out_request_no": refund_no,
                "refund_reason": reason[:256],
            },
        )
        # fund_change Y: the money moved now; N: already refunded or still under way.
        status = "success" if node.get("fund_change") == "Y" else "processing"
        return RefundResult(refund_no=refund_no, provider_refund_id=str(node.get("trade_no", "")), status=status)

    def bill(self, day: dt.date) -> list[BillLine]:
        try:
            node = self._call(
                "alipay.data.dataservice.bill.downloadurl.query", {"bill_type": "trade", "bill_date": day.isoformat()}
            )
        except PaymentsError as exc:
            if exc.code == PaymentsCode.GATEWAY_ERROR and exc.detail.get("gateway_code") == "isp.bill_not_exist":
                return []
            raise
        url = str(node.get("bill_download_url", ""))
        target = urlsplit(url)
        own = urlsplit(self.base_url)
        allowed = target.scheme == "https" and any(
            target.hostname and (target.hostname == h.lstrip(".") or target.hostname.endswith(h))
            for h in self.bill_hosts
        )
        if not allowed and (target.scheme, target.netloc) != (own.scheme, own.netloc):
            raise PaymentsError(PaymentsCode.GATEWAY_BAD_RESPONSE, field="bill_download_url")
        answer = self.transport.request("GET", url, headers={}, body=None, timeout=self.timeout)
        if answer.status >= 500:
            raise PaymentsError(PaymentsCode.GATEWAY_UNAVAILABLE, gateway_status=answer.status)
        if answer.status != 200:
            raise PaymentsError(PaymentsCode.GATEWAY_ERROR, gateway_status=answer.status, gateway_code="")
        return parse_trade_bill(answer.body)


def parse_trade_bill(raw: bytes) -> list[BillLine]:
    """The trade bill: a ZIP of GBK CSV files; the detail file (业务明细, not 汇总) has
    ``#`` comment lines, a header row, then one row per 交易 / 退款."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
        names = [n for n in archive.namelist() if n.endswith(".csv") and "汇总" not in n]
        if not names:
            return []
        text = archive.read(names[0]).decode("gb18030")
    except (zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise PaymentsError(PaymentsCode.GATEWAY_BAD_RESPONSE, field="bill") from exc
    rows = [r for r in csv.reader(io.StringIO(text)) if r and not r[0].startswith("#")]
    if not rows:
        return []
    index = {name.strip(): i for i, name in enumerate(rows[0])}
    needed = ("支付宝交易号", "商户订单号", "业务类型", "完成时间", "订单金额（元）")
    if any(n not in index for n in needed):
        raise PaymentsError(PaymentsCode.GATEWAY_BAD_RESPONSE, field="bill_header")
    lines: list[BillLine] = []
    for row in rows[1:]:
        cells = [c.strip() for c in row]
        if len(cells) < len(index):
            continue

        def cell(name: str, cells: list[str] = cells) -> str:
            return cells[index[name]] if name in index else ""

        kind = {"交易": "charge", "退款": "refund"}.get(cell("业务类型"))
        if kind is None:
            continue
        try:
            amount = abs(yuan_to_fen(cell("订单金额（元）")))
            when = parse_beijing(cell("完成时间"))
        except ValueError as exc:
            raise PaymentsError(PaymentsCode.GATEWAY_BAD_RESPONSE, field="bill_row") from exc
        lines.append(
            BillLine(
                order_no=cell("商户订单号"),
                transaction_id=cell("支付宝交易号"),
                kind=kind,
                amount_fen=amount,
                occurred_at=when,
                refund_no=(cell("退款批次号/请求号") or None) if kind == "refund" else None,
            )
        )
    return lines
