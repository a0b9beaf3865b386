"""The sandbox payment gateway: WeChat Pay API v3 on the wire, run by the hub itself.

It is what the embedded default pays with, so the real :class:`WechatPayV3` code path runs
end to end without a merchant account:

- :class:`SandboxKeys`: a merchant key pair, a platform key pair (each with a certificate
  serial), the APIv3 key, a mchid and an appid, generated at first use and kept in
  ``settings.PAYMENTS_SANDBOX_DIR`` (``var/payments_sandbox/keys.json``, mode 600, never
  committed);
- :class:`SandboxGateway`: the v3 endpoints the adapter calls (prepay, query, close, refund,
  trade bill and its download), each request's merchant signature verified with the merchant
  public key, each answer signed with the platform key; the pay sheet's operations (show,
  pay after checking ``paySign``, cancel) and the test controls (fail the next callbacks,
  delay, repeat, wrong amount, bad signature; fault the next API answers);
- callbacks: signed ``TRANSACTION.SUCCESS`` / ``REFUND.SUCCESS`` notifications, the
  resource encrypted with the APIv3 key, POSTed over real HTTP to the trade's
  ``notify_url``, retried on failure like WeChat Pay (15 s, 15 s, 30 s, 3 min, 10 min, ...);
- :class:`SandboxWechatPay`: the provider (``WechatPayV3`` on the sandbox keys, base URL
  pointing here), refused in production like the gateway itself.

State: JSON files under the sandbox directory, one per trade and one per queued callback,
changed under an ``fcntl`` lock so the web process and a worker share them (no model: the
gateway layer owns no tables; docs/adr/0041-payment-providers.md)."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import fcntl
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.core.cache import cache

from . import crypto
from .base import Channel
from .errors import PaymentsCode, PaymentsError
from .transport import Headers, HttpAnswer, Transport, UrllibTransport
from .wechat import (
    BEIJING,
    TRADE_BILL_HEADER,
    WechatPayV3,
    answer_message,
    parse_authorization,
    pay_sign_message,
    request_message,
    rfc3339,
)

log = logging.getLogger("apps.commerce.payments.sandbox")

SEND_LEASE_SECONDS = 120  # a callback claimed longer ago than this by a dead sender is sent again
RETRY_SECONDS = (15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600)
_TRADE_NO = re.compile(r"[A-Za-z0-9_-]{6,32}")
_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
CONTROL_KEYS = {"fail_callbacks": int, "delay_seconds": int, "repeat": int, "wrong_amount": bool, "bad_signature": bool}
FAULTS = {"error_500", "malformed_json", "bad_signature", "timeout"}


def refuse_in_production() -> None:
    if settings.PRODUCTION:
        raise PaymentsError(PaymentsCode.SANDBOX_IN_PRODUCTION)


def sandbox_dir() -> Path:
    return Path(getattr(settings, "PAYMENTS_SANDBOX_DIR", "") or Path(settings.VAR_DIR) / "payments_sandbox")


@contextlib.contextmanager
def _flock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_json(path: Path, data: Any, *, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1))
    if private:
        tmp.chmod(0o600)
    tmp.replace(path)


@dataclass(frozen=True)
class SandboxKeys:
    merchant_id: str
    app_id: str
    merchant_name: str
    merchant_serial: str
    merchant_private_key: str
    merchant_certificate: str
    platform_serial: str
    platform_private_key: str
    platform_certificate: str
    apiv3_key: str

    @classmethod
    def generate(cls, merchant_name: str = "互联网医院（模拟商户）") -> SandboxKeys:
        merchant = crypto.new_private_key()
        platform = crypto.new_private_key()
        merchant_cert, merchant_serial = crypto.self_signed_certificate(merchant, "sandbox merchant")
        platform_cert, platform_serial = crypto.self_signed_certificate(platform, "sandbox wechatpay platform")
        alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        return cls(
            merchant_id="19" + "".join(secrets.choice("0123456789") for _ in range(8)),
            app_id="wx" + secrets.token_hex(8),
            merchant_name=merchant_name,
            merchant_serial=merchant_serial,
            merchant_private_key=crypto.private_pem(merchant),
            merchant_certificate=merchant_cert,
            platform_serial=platform_serial,
            platform_private_key=crypto.private_pem(platform),
            platform_certificate=platform_cert,
            apiv3_key="".join(secrets.choice(alphabet) for _ in range(32)),
        )

    @classmethod
    def load_or_create(cls, directory: Path) -> SandboxKeys:
        path = directory / "keys.json"
        with _flock(directory / "keys.lock"):
            if path.exists():
                return cls(**json.loads(path.read_text()))
            keys = cls.generate()
            _write_json(path, asdict(keys), private=True)
            log.info("sandbox payment keys generated in %s", directory)
            return keys


class SandboxStore:
    """Trades and queued callbacks as JSON files; read-modify-write under one lock."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        with _flock(self.dir / "store.lock"):
            yield

    def _trade_path(self, prepay_id: str) -> Path:
        return self.dir / "trades" / f"{prepay_id}.json"

    def trade(self, prepay_id: str) -> dict[str, Any] | None:
        if not _ID.fullmatch(prepay_id):
            return None
        path = self._trade_path(prepay_id)
        return json.loads(path.read_text()) if path.exists() else None

    def trade_by_order(self, merchant_id: str, order_no: str) -> dict[str, Any] | None:
        path = self.dir / "orders" / f"{merchant_id}-{order_no}"
        return self.trade(path.read_text().strip()) if path.exists() else None

    def save_trade(self, trade: dict[str, Any]) -> None:
        _write_json(self._trade_path(trade["prepay_id"]), trade)
        index = self.dir / "orders" / f"{trade['mchid']}-{trade['out_trade_no']}"
        if not index.exists():
            index.parent.mkdir(parents=True, exist_ok=True)
            index.write_text(trade["prepay_id"])

    def trades(self) -> list[dict[str, Any]]:
        folder = self.dir / "trades"
        return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.exists() else []

    def callback(self, callback_id: str) -> dict[str, Any] | None:
        path = self.dir / "callbacks" / f"{callback_id}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def save_callback(self, entry: dict[str, Any]) -> None:
        _write_json(self.dir / "callbacks" / f"{entry['id']}.json", entry)

    def callbacks(self) -> list[dict[str, Any]]:
        folder = self.dir / "callbacks"
        if not folder.exists():
            return []
        entries = [json.loads(p.read_text()) for p in folder.glob("*.json")]
        return sorted(entries, key=lambda e: (e["created_at"], e["seq"]))

    def faults(self) -> list[str]:
        path = self.dir / "faults.json"
        return list(json.loads(path.read_text())) if path.exists() else []

    def save_faults(self, faults: list[str]) -> None:
        _write_json(self.dir / "faults.json", faults)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


_STATE_DESC = {"NOTPAY": "订单未支付", "SUCCESS": "支付成功", "CLOSED": "已关闭", "REFUND": "转入退款"}


def _now_rfc3339(now: float) -> str:
    return rfc3339(dt.datetime.fromtimestamp(now, dt.UTC))


def _fen_display(fen: int) -> str:
    return f"¥{fen // 100}.{fen % 100:02d}"


class SandboxGateway:
    """The gateway's logic, independent of Django: ``handle_v3`` answers the adapter's
    requests; the pay-sheet and control methods back the JSON views in ``views.py``."""

    def __init__(
        self,
        *,
        directory: Path | None = None,
        transport: Transport | None = None,
        clock: Callable[[], float] = time.time,
        window: int = 300,
    ) -> None:
        refuse_in_production()
        self.dir = directory or sandbox_dir()
        self.keys = SandboxKeys.load_or_create(self.dir)
        self.store = SandboxStore(self.dir)
        self.transport: Transport = transport or UrllibTransport()
        self.clock = clock
        self.window = window
        self._platform_key = crypto.load_private_key(self.keys.platform_private_key)
        self._merchant_public = crypto.load_public_key(self.keys.merchant_certificate)

    # --- the wire --------------------------------------------------------------------

    def sign_answer(
        self, status: int, payload: Mapping[str, Any] | None, *, key: crypto.PrivateKey | None = None
    ) -> Answer:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode() if payload is not None else b""
        timestamp, nonce = str(int(self.clock())), crypto.nonce_str()
        signature = crypto.sign_sha256_rsa(key or self._platform_key, answer_message(timestamp, nonce, body))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Request-ID": secrets.token_hex(16),
            "Wechatpay-Serial": self.keys.platform_serial,
            "Wechatpay-Timestamp": timestamp,
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": signature,
        }
        return Answer(status, headers, body)

    def _error(self, status: int, code: str, message: str) -> Answer:
        return self.sign_answer(status, {"code": code, "message": message})

    def _check_merchant(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> str | None:
        auth = parse_authorization(next((v for k, v in headers.items() if k.lower() == "authorization"), ""))
        if not auth:
            return "缺少或无法解析 Authorization"
        if auth.get("mchid") != self.keys.merchant_id:
            return "商户号不存在"
        if auth.get("serial_no", "").upper() != self.keys.merchant_serial.upper():
            return "商户证书序列号有误"
        timestamp, nonce = auth.get("timestamp", ""), auth.get("nonce_str", "")
        if not timestamp.isdigit() or abs(self.clock() - int(timestamp)) > self.window:
            return "请求时间戳已过期"
        message = request_message(method, url, timestamp, nonce, body.decode("utf-8", "replace"))
        if not crypto.verify_sha256_rsa(self._merchant_public, message, auth.get("signature", "")):
            return "签名错误"
        if not cache.add(f"payments:sbx-req-nonce:{hashlib.sha256(nonce.encode()).hexdigest()}", 1, 2 * self.window):
            return "重复的请求随机串"
        return None

    def handle_v3(
        self, method: str, full_url: str, route: str, headers: Mapping[str, str], body: bytes, *, base_url: str
    ) -> Answer:
        """One API v3 request: ``full_url`` is the path and query the merchant signed,
        ``route`` the part from ``/v3/`` on, ``base_url`` where the gateway is mounted
        (for the bill's download URL)."""
        refused = self._check_merchant(method, full_url, headers, body)
        if refused is not None:
            return self._error(401, "SIGN_ERROR", refused)
        fault = self._take_fault()
        if fault == "error_500":
            return self._error(500, "SYSTEM_ERROR", "系统错误")
        if fault == "timeout":
            time.sleep(float(getattr(settings, "PAYMENTS_SANDBOX_TIMEOUT_SLEEP", 3.0)))
        answer = self._route(method, route, body, base_url)
        if fault == "malformed_json":
            return Answer(answer.status, {**answer.headers, "Content-Type": "application/json"}, b"{not json")
        if fault == "bad_signature":
            return Answer(
                answer.status,
                {**answer.headers, "Wechatpay-Signature": base64.b64encode(b"x" * 256).decode()},
                answer.body,
            )
        return answer

    def _route(self, method: str, route: str, body: bytes, base_url: str) -> Answer:
        split = urlsplit(route)
        path, query = split.path, {k: v[0] for k, v in parse_qs(split.query).items()}
        try:
            payload = json.loads(body) if body else {}
            if not isinstance(payload, dict):
                raise ValueError
        except ValueError:
            return self._error(400, "PARAM_ERROR", "请求体不是合法的 JSON 对象")
        if method == "POST" and path == "/v3/pay/transactions/jsapi":
            return self._jsapi(payload)
        m = re.fullmatch(r"/v3/pay/transactions/out-trade-no/([^/]+)", path)
        if method == "GET" and m:
            return self._query(m.group(1), query.get("mchid", ""))
        m = re.fullmatch(r"/v3/pay/transactions/out-trade-no/([^/]+)/close", path)
        if method == "POST" and m:
            return self._close(m.group(1), payload)
        if method == "POST" and path == "/v3/refund/domestic/refunds":
            return self._refund(payload)
        if method == "GET" and path == "/v3/bill/tradebill":
            return self._tradebill(query, base_url)
        if method == "GET" and path == "/v3/billdownload/file":
            return self._billfile(query.get("token", ""))
        return self._error(404, "NOT_FOUND", "接口不存在")

    def _take_fault(self) -> str | None:
        with self.store.lock():
            faults = self.store.faults()
            if not faults:
                return None
            fault = faults.pop(0)
            self.store.save_faults(faults)
            return fault

    # --- the v3 endpoints ------------------------------------------------------------

    def _jsapi(self, p: Mapping[str, Any]) -> Answer:
        try:
            appid, mchid, order_no = str(p["appid"]), str(p["mchid"]), str(p["out_trade_no"])
            total = p["amount"]["total"]
            notify_url, description = str(p["notify_url"]), str(p["description"])
            expire = dt.datetime.fromisoformat(str(p.get("time_expire") or _now_rfc3339(self.clock() + 7200)))
            openid = str(p["payer"]["openid"])
        except (KeyError, TypeError, ValueError):
            return self._error(400, "PARAM_ERROR", "参数错误")
        if mchid != self.keys.merchant_id or appid != self.keys.app_id:
            return self._error(400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配")
        if not _TRADE_NO.fullmatch(order_no) or not isinstance(total, int) or total <= 0:
            return self._error(400, "PARAM_ERROR", "参数错误")
        if not notify_url.startswith(("https://", "http://")) or not description or len(description) > 127:
            return self._error(400, "PARAM_ERROR", "参数错误")
        fingerprint = hashlib.sha256(json.dumps([total, description, notify_url, openid]).encode()).hexdigest()
        with self.store.lock():
            trade = self.store.trade_by_order(mchid, order_no)
            if trade is not None:
                if trade["state"] == "SUCCESS" or trade["state"] == "REFUND":
                    return self._error(400, "ORDERPAID", "该订单已支付")
                if trade["state"] == "CLOSED":
                    return self._error(400, "ORDER_CLOSED", "订单已关闭")
                if trade["fingerprint"] != fingerprint:
                    return self._error(400, "INVALID_REQUEST", "201 商户订单号重复")
                return self.sign_answer(200, {"prepay_id": trade["prepay_id"]})
            trade = {
                "prepay_id": "wx" + secrets.token_hex(16),
                "appid": appid,
                "mchid": mchid,
                "out_trade_no": order_no,
                "description": description,
                "notify_url": notify_url,
                "amount_total": total,
                "time_expire": expire.astimezone(dt.UTC).isoformat(),
                "openid": openid,
                "fingerprint": fingerprint,
                "state": "NOTPAY",
                "transaction_id": "",
                "success_time": "",
                "created_at": self.clock(),
                "refunds": [],
                "controls": {},
                "cancelled": 0,
            }
            self.store.save_trade(trade)
        return self.sign_answer(200, {"prepay_id": trade["prepay_id"]})

    def transaction_json(self, trade: Mapping[str, Any]) -> dict[str, Any]:
        state = trade["state"]
        data: dict[str, Any] = {
            "appid": trade["appid"],
            "mchid": trade["mchid"],
            "out_trade_no": trade["out_trade_no"],
            "trade_type": "JSAPI",
            "trade_state": state,
            "trade_state_desc": {
                "NOTPAY": "订单未支付",
                "SUCCESS": "支付成功",
                "CLOSED": "已关闭",
                "REFUND": "转入退款",
            }[state],
            "amount": {"total": trade["amount_total"], "currency": "CNY"},
        }
        if trade["transaction_id"]:
            data.update(
                transaction_id=trade["transaction_id"],
                bank_type="OTHERS",
                attach="",
                success_time=trade["success_time"],
                payer={"openid": trade["openid"]},
            )
            data["amount"].update(payer_total=trade["amount_total"], payer_currency="CNY")
        return data

    def _query(self, order_no: str, mchid: str) -> Answer:
        if mchid != self.keys.merchant_id:
            return self._error(400, "PARAM_ERROR", "商户号不匹配")
        trade = self.store.trade_by_order(mchid, order_no)
        if trade is None:
            return self._error(404, "ORDER_NOT_EXIST", "订单不存在")
        return self.sign_answer(200, self.transaction_json(trade))

    def _close(self, order_no: str, p: Mapping[str, Any]) -> Answer:
        if p.get("mchid") != self.keys.merchant_id:
            return self._error(400, "PARAM_ERROR", "商户号不匹配")
        with self.store.lock():
            trade = self.store.trade_by_order(self.keys.merchant_id, order_no)
            if trade is None:
                return self._error(404, "ORDER_NOT_EXIST", "订单不存在")
            if trade["state"] in {"SUCCESS", "REFUND"}:
                return self._error(400, "ORDERPAID", "订单已支付")
            trade["state"] = "CLOSED"
            self.store.save_trade(trade)
        return self.sign_answer(204, None)

    def _refund(self, p: Mapping[str, Any]) -> Answer:
        try:
            order_no, refund_no = str(p["out_trade_no"]), str(p["out_refund_no"])
            amount, total = p["amount"]["refund"], p["amount"]["total"]
            notify_url = str(p.get("notify_url", ""))
        except (KeyError, TypeError):
            return self._error(400, "PARAM_ERROR", "参数错误")
        if not isinstance(amount, int) or not isinstance(total, int) or amount <= 0:
            return self._error(400, "PARAM_ERROR", "参数错误")
        with self.store.lock():
            trade = self.store.trade_by_order(self.keys.merchant_id, order_no)
            if trade is None:
                return self._error(404, "RESOURCE_NOT_EXISTS", "订单不存在")
            existing = next((r for r in trade["refunds"] if r["out_refund_no"] == refund_no), None)
            if existing is not None:
                return self.sign_answer(200, self._refund_json(trade, existing))
            if trade["state"] not in {"SUCCESS", "REFUND"}:
                return self._error(400, "TRADE_ERROR", "订单未支付，不能退款")
            if total != trade["amount_total"]:
                return self._error(400, "PARAM_ERROR", "订单金额与原订单不一致")
            refunded = sum(r["amount"] for r in trade["refunds"])
            if refunded + amount > total:
                return self._error(400, "NOT_ENOUGH", "退款金额超过订单可退金额")
            refund = {
                "out_refund_no": refund_no,
                "refund_id": "50" + "".join(secrets.choice("0123456789") for _ in range(27)),
                "amount": amount,
                "reason": str(p.get("reason", "")),
                "status": "SUCCESS",
                "create_time": _now_rfc3339(self.clock()),
                "success_time": _now_rfc3339(self.clock()),
                "notify_url": notify_url,
            }
            trade["refunds"].append(refund)
            trade["state"] = "REFUND"
            self.store.save_trade(trade)
            answer = dict(self._refund_json(trade, refund), status="PROCESSING")
            if notify_url:
                self._enqueue(trade, kind="refund", refund_no=refund_no, notify_url=notify_url, controls={})
        self._after_enqueue(trade["prepay_id"], inline=False)
        return self.sign_answer(200, answer)

    def _refund_json(self, trade: Mapping[str, Any], refund: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "refund_id": refund["refund_id"],
            "out_refund_no": refund["out_refund_no"],
            "transaction_id": trade["transaction_id"],
            "out_trade_no": trade["out_trade_no"],
            "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱",
            "success_time": refund["success_time"],
            "create_time": refund["create_time"],
            "status": refund["status"],
            "amount": {
                "total": trade["amount_total"],
                "refund": refund["amount"],
                "payer_total": trade["amount_total"],
                "payer_refund": refund["amount"],
                "currency": "CNY",
            },
        }

    def _bill_token(self, day: str) -> str:
        mac = hmac.new(self.keys.apiv3_key.encode(), f"{self.keys.merchant_id}:{day}".encode(), "sha256")
        return f"{day}.{mac.hexdigest()[:32]}"

    def bill_csv(self, day: dt.date) -> bytes:
        """The day's trade bill (Beijing day) in the v3 format, or b"" when nothing happened."""
        rows: list[list[str]] = []

        def on_day(stamp: str) -> bool:
            return bool(stamp) and dt.datetime.fromisoformat(stamp).astimezone(BEIJING).date() == day

        def shown(stamp: str) -> str:
            return dt.datetime.fromisoformat(stamp).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")

        columns = TRADE_BILL_HEADER.split(",")
        charges = refunds = 0
        for t in self.store.trades():
            if not t["transaction_id"]:
                continue
            common = {
                "公众账号ID": t["appid"],
                "商户号": t["mchid"],
                "特约商户号": "0",
                "微信订单号": t["transaction_id"],
                "商户订单号": t["out_trade_no"],
                "用户标识": t["openid"],
                "交易类型": "JSAPI",
                "付款银行": "OTHERS",
                "货币种类": "CNY",
                "商品名称": t["description"],
                "手续费": "0.00000",
                "费率": "0.60%",
                "订单金额": f"{t['amount_total'] / 100:.2f}",
            }
            if on_day(t["success_time"]):
                charges += t["amount_total"]
                row = {**common, "交易时间": shown(t["success_time"]), "交易状态": "SUCCESS"}
                row["应结订单金额"] = common["订单金额"]
                rows.append([row.get(c, "") for c in columns])
            for r in t["refunds"]:
                if on_day(r["success_time"]):
                    refunds += r["amount"]
                    row = {**common, "交易时间": shown(r["success_time"]), "交易状态": "REFUND"}
                    row.update(
                        {
                            "应结订单金额": "0.00",
                            "微信退款单号": r["refund_id"],
                            "商户退款单号": r["out_refund_no"],
                            "退款金额": f"{r['amount'] / 100:.2f}",
                            "退款类型": "ORIGINAL",
                            "退款状态": "SUCCESS",
                            "申请退款金额": f"{r['amount'] / 100:.2f}",
                        }
                    )
                    rows.append([row.get(c, "") for c in columns])
        if not rows:
            return b""
        lines = [TRADE_BILL_HEADER]
        lines += [",".join("`" + c for c in row) for row in rows]
        lines.append("总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额")
        lines.append(
            f"`{len(rows)},`{charges / 100:.2f},`{refunds / 100:.2f},`0.00,`0.00000,`{charges / 100:.2f},"
            f"`{refunds / 100:.2f}"
        )
        return ("\r\n".join(lines) + "\r\n").encode("utf-8")

    def _tradebill(self, query: Mapping[str, str], base_url: str) -> Answer:
        try:
            day = dt.date.fromisoformat(query.get("bill_date", ""))
        except ValueError:
            return self._error(400, "PARAM_ERROR", "账单日期格式不正确")
        content = self.bill_csv(day)
        if not content:
            return self._error(400, "NO_STATEMENT_EXIST", "要下载的账单不存在")
        base = base_url.rstrip("/")
        return self.sign_answer(
            200,
            {
                "hash_type": "SHA1",
                "hash_value": hashlib.sha1(content).hexdigest(),  # noqa: S324 (the v3 format)
                "download_url": f"{base}/v3/billdownload/file?token={self._bill_token(day.isoformat())}",
            },
        )

    def _billfile(self, token: str) -> Answer:
        day, _, _ = token.partition(".")
        try:
            valid = hmac.compare_digest(token, self._bill_token(dt.date.fromisoformat(day).isoformat()))
        except ValueError:
            valid = False
        if not valid:
            return self._error(400, "PARAM_ERROR", "下载令牌无效")
        content = self.bill_csv(dt.date.fromisoformat(day))
        return Answer(200, {"Content-Type": "text/plain; charset=utf-8"}, content)

    # --- the pay sheet ---------------------------------------------------------------

    def _trade_or_404(self, prepay_id: str) -> dict[str, Any]:
        trade = self.store.trade(prepay_id)
        if trade is None:
            raise PaymentsError(PaymentsCode.SANDBOX_TRADE_NOT_FOUND)
        return trade

    def _expired(self, trade: Mapping[str, Any]) -> bool:
        return dt.datetime.fromisoformat(trade["time_expire"]).timestamp() < self.clock()

    def sheet(self, prepay_id: str) -> dict[str, Any]:
        """What the pay sheet shows."""
        trade = self._trade_or_404(prepay_id)
        state = "EXPIRED" if trade["state"] == "NOTPAY" and self._expired(trade) else trade["state"]
        return {
            "prepay_id": trade["prepay_id"],
            "order_no": trade["out_trade_no"],
            "amount_fen": trade["amount_total"],
            "amount_display": _fen_display(trade["amount_total"]),
            "description": trade["description"],
            "merchant_name": self.keys.merchant_name,
            "merchant_id": trade["mchid"],
            "state": state,
            "expires_at": trade["time_expire"],
            "transaction_id": trade["transaction_id"],
            "controls": trade["controls"],
            "cancelled": trade["cancelled"],
        }

    def pay(self, prepay_id: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """``wx.requestPayment`` on the pay sheet: the paySign is checked with the merchant
        public key, the trade is paid, its callbacks are queued (and sent now when the
        delivery mode is inline and nothing delays them)."""
        package = f"prepay_id={prepay_id}"
        app_id, ts, nonce = (
            str(params.get("appId", "")),
            str(params.get("timeStamp", "")),
            str(params.get("nonceStr", "")),
        )
        message = pay_sign_message(app_id, ts, nonce, package)
        if (
            params.get("package") != package
            or app_id != self.keys.app_id
            or params.get("signType") != "RSA"
            or not crypto.verify_sha256_rsa(self._merchant_public, message, str(params.get("paySign", "")))
        ):
            raise PaymentsError(PaymentsCode.BAD_SIGNATURE)
        with self.store.lock():
            trade = self._trade_or_404(prepay_id)
            if trade["state"] != "NOTPAY" or self._expired(trade):
                state = "EXPIRED" if trade["state"] == "NOTPAY" else trade["state"]
                raise PaymentsError(PaymentsCode.SANDBOX_TRADE_STATE, state=state)
            trade.update(
                state="SUCCESS",
                transaction_id="42" + "".join(secrets.choice("0123456789") for _ in range(26)),
                success_time=_now_rfc3339(self.clock()),
            )
            controls, trade["controls"] = trade["controls"], {}
            self.store.save_trade(trade)
            self._enqueue(trade, kind="transaction", refund_no=None, notify_url=trade["notify_url"], controls=controls)
        self._after_enqueue(prepay_id, inline=True)
        return {
            "errMsg": "requestPayment:ok",
            "state": "SUCCESS",
            "transaction_id": trade["transaction_id"],
            "callbacks": self.callbacks_of(prepay_id),
        }

    def cancel(self, prepay_id: str) -> dict[str, Any]:
        """The payer closed the sheet: the trade stays unpaid (as ``requestPayment:fail cancel``)."""
        with self.store.lock():
            trade = self._trade_or_404(prepay_id)
            if trade["state"] != "NOTPAY":
                raise PaymentsError(PaymentsCode.SANDBOX_TRADE_STATE, state=trade["state"])
            trade["cancelled"] += 1
            self.store.save_trade(trade)
        return {"errMsg": "requestPayment:fail cancel", "state": "NOTPAY"}

    def set_controls(self, prepay_id: str, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Controls for the next callbacks of this trade: ``fail_callbacks`` (the first N
        attempts are not delivered and retried on the schedule), ``delay_seconds`` (before
        the first attempt), ``repeat`` (N deliveries of the same notification, each freshly
        signed), ``wrong_amount`` (the resource's amount is one fen more), ``bad_signature``
        (signed with a key that is not the platform key)."""
        controls: dict[str, Any] = {}
        for key, value in raw.items():
            kind = CONTROL_KEYS.get(key)
            if kind is None or type(value) is not kind or (isinstance(value, int) and not 0 <= value <= 100):
                raise PaymentsError(PaymentsCode.BAD_REQUEST, field=key)
            controls[key] = value
        with self.store.lock():
            trade = self._trade_or_404(prepay_id)
            trade["controls"] = controls
            self.store.save_trade(trade)
        return controls

    def set_faults(self, faults: list[str]) -> list[str]:
        """The next API answers, in order: ``error_500``, ``malformed_json``, ``bad_signature``
        (of the answer), ``timeout`` (answer after PAYMENTS_SANDBOX_TIMEOUT_SLEEP seconds)."""
        if not isinstance(faults, list) or any(f not in FAULTS for f in faults) or len(faults) > 20:
            raise PaymentsError(PaymentsCode.BAD_REQUEST, field="faults")
        with self.store.lock():
            self.store.save_faults(list(faults))
        return faults

    # --- callbacks -------------------------------------------------------------------

    def _enqueue(
        self,
        trade: Mapping[str, Any],
        *,
        kind: str,
        refund_no: str | None,
        notify_url: str,
        controls: Mapping[str, Any],
    ) -> None:
        """Queue the callback(s) of an event; call under the store lock."""
        notification_id = str(uuid.uuid4())
        now = self.clock()
        for seq in range(max(1, int(controls.get("repeat", 1)))):
            self.store.save_callback(
                {
                    "id": f"{int(now * 1000)}-{secrets.token_hex(6)}",
                    "notification_id": notification_id,
                    "prepay_id": trade["prepay_id"],
                    "kind": kind,
                    "refund_no": refund_no,
                    "notify_url": notify_url,
                    "created_at": now,
                    "seq": seq,
                    "due_at": now + int(controls.get("delay_seconds", 0)),
                    "fail_remaining": int(controls.get("fail_callbacks", 0)) if seq == 0 else 0,
                    "wrong_amount": bool(controls.get("wrong_amount", False)),
                    "bad_signature": bool(controls.get("bad_signature", False)),
                    "status": "pending",
                    "attempts": [],
                }
            )

    def _after_enqueue(self, prepay_id: str, *, inline: bool) -> None:
        mode = getattr(settings, "PAYMENTS_SANDBOX_DELIVERY", "thread")
        if mode == "inline":
            if inline:
                self.deliver_due(prepay_id=prepay_id)
        else:
            _kick_worker(self)

    def notification(
        self,
        trade: Mapping[str, Any],
        *,
        kind: str = "transaction",
        refund_no: str | None = None,
        notification_id: str | None = None,
        wrong_amount: bool = False,
        bad_signature: bool = False,
    ) -> tuple[dict[str, str], bytes]:
        """A signed notification of ``trade`` (headers, body), as WeChat Pay posts it."""
        if kind == "transaction":
            resource = self.transaction_json(trade)
            resource["trade_state"], resource["trade_state_desc"] = "SUCCESS", "支付成功"
            if wrong_amount:
                resource["amount"]["total"] += 1
                resource["amount"]["payer_total"] = resource["amount"]["total"]
            event, summary, original = "TRANSACTION.SUCCESS", "支付成功", "transaction"
        else:
            refund = next(r for r in trade["refunds"] if r["out_refund_no"] == refund_no)
            resource = {
                "mchid": trade["mchid"],
                "out_trade_no": trade["out_trade_no"],
                "transaction_id": trade["transaction_id"],
                "out_refund_no": refund["out_refund_no"],
                "refund_id": refund["refund_id"],
                "refund_status": "SUCCESS",
                "success_time": refund["success_time"],
                "user_received_account": "支付用户零钱",
                "amount": {
                    "total": trade["amount_total"],
                    "refund": refund["amount"] + (1 if wrong_amount else 0),
                    "payer_total": trade["amount_total"],
                    "payer_refund": refund["amount"],
                },
            }
            event, summary, original = "REFUND.SUCCESS", "退款成功", "refund"
        nonce = secrets.token_urlsafe(9)[:12]
        plaintext = json.dumps(resource, ensure_ascii=False, separators=(",", ":")).encode()
        envelope = {
            "id": notification_id or str(uuid.uuid4()),
            "create_time": _now_rfc3339(self.clock()),
            "resource_type": "encrypt-resource",
            "event_type": event,
            "summary": summary,
            "resource": {
                "original_type": original,
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": crypto.aes_gcm_encrypt(self.keys.apiv3_key.encode(), nonce, original, plaintext),
                "associated_data": original,
                "nonce": nonce,
            },
        }
        answer = self.sign_answer(200, envelope, key=crypto.new_private_key() if bad_signature else None)
        headers = {k: v for k, v in answer.headers.items() if k.startswith("Wechatpay-")}
        headers.update({"Content-Type": "application/json", "User-Agent": "Mozilla/4.0"})
        return headers, answer.body

    def notification_for(self, order_no: str, **kwargs: Any) -> tuple[dict[str, str], bytes]:
        """A freshly signed notification of the sandbox trade of ``order_no`` (for drills and
        commerce's tests: post it to the notify route as many times and as concurrently as
        needed). ``kwargs`` as :meth:`notification`."""
        trade = self.store.trade_by_order(self.keys.merchant_id, order_no)
        if trade is None:
            raise PaymentsError(PaymentsCode.SANDBOX_TRADE_NOT_FOUND)
        if not trade["transaction_id"]:
            raise PaymentsError(PaymentsCode.SANDBOX_TRADE_STATE, state=trade["state"])
        return self.notification(trade, **kwargs)

    def callbacks_of(self, prepay_id: str | None = None) -> list[dict[str, Any]]:
        return [
            {k: e[k] for k in ("id", "notification_id", "kind", "refund_no", "seq", "status", "attempts", "due_at")}
            for e in self.store.callbacks()
            if prepay_id is None or e["prepay_id"] == prepay_id
        ]

    def deliver_due(
        self, *, prepay_id: str | None = None, force: bool = False, parallel: bool = False
    ) -> list[dict[str, Any]]:
        """Send the pending callbacks that are due (all pending ones when ``force``), each
        once; ``parallel`` sends them at the same time (duplicate-delivery drills)."""
        now = self.clock()
        with self.store.lock():
            claimed = []
            for entry in self.store.callbacks():
                # A "sending" entry whose sender died (lease over) is pending again.
                stale = entry["status"] == "sending" and entry.get("claimed_at", 0) < now - SEND_LEASE_SECONDS
                if (entry["status"] != "pending" and not stale) or (prepay_id and entry["prepay_id"] != prepay_id):
                    continue
                if entry["due_at"] > now and not force:
                    continue
                entry["status"], entry["claimed_at"] = "sending", now
                self.store.save_callback(entry)
                claimed.append(entry)
        if parallel and len(claimed) > 1:
            threads = [threading.Thread(target=self._attempt, args=(e,)) for e in claimed]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        else:
            for entry in claimed:
                self._attempt(entry)
        return self.callbacks_of(prepay_id)

    def _attempt(self, entry: dict[str, Any]) -> None:
        result: str
        if entry["fail_remaining"] > 0:
            entry["fail_remaining"] -= 1
            result = "dropped"
        else:
            trade = self.store.trade(entry["prepay_id"])
            assert trade is not None
            headers, body = self.notification(
                trade,
                kind=entry["kind"],
                refund_no=entry["refund_no"],
                notification_id=entry["notification_id"],
                wrong_amount=entry["wrong_amount"],
                bad_signature=entry["bad_signature"],
            )
            try:
                answer = self.transport.request("POST", entry["notify_url"], headers=headers, body=body, timeout=5.0)
                result = str(answer.status)
            except PaymentsError as exc:
                result = str(exc.detail.get("reason", "unreachable"))
        with self.store.lock():
            entry["attempts"].append({"at": _now_rfc3339(self.clock()), "result": result})
            if result.isdigit() and 200 <= int(result) < 300:
                entry["status"] = "delivered"
            elif len(entry["attempts"]) > len(RETRY_SECONDS):
                entry["status"] = "given_up"
            else:
                entry["status"] = "pending"
                entry["due_at"] = self.clock() + RETRY_SECONDS[len(entry["attempts"]) - 1]
            self.store.save_callback(entry)
        log.info("sandbox callback %s (%s) attempt %s: %s", entry["id"], entry["kind"], len(entry["attempts"]), result)


_worker_lock = threading.Lock()
_worker: threading.Thread | None = None


def _kick_worker(gateway: SandboxGateway) -> None:
    """A daemon thread that sends due callbacks until none is pending (thread delivery mode)."""
    global _worker
    with _worker_lock:
        if _worker is not None and _worker.is_alive():
            return

        def run() -> None:
            while True:
                try:
                    gateway.deliver_due()
                    pending = [e for e in gateway.store.callbacks() if e["status"] in {"pending", "sending"}]
                except Exception:  # a broken file must not kill the demo's delivery loop silently
                    log.exception("sandbox callback delivery failed")
                    pending = []
                if not pending:
                    return
                wait = min(e["due_at"] for e in pending) - gateway.clock()
                time.sleep(min(max(wait, 0.2), 5.0))

        _worker = threading.Thread(target=run, name="payments-sandbox-callbacks", daemon=True)
        _worker.start()


_gateways: dict[Path, SandboxGateway] = {}
_gateways_lock = threading.Lock()


def gateway() -> SandboxGateway:
    """The process's gateway on ``settings.PAYMENTS_SANDBOX_DIR`` (refused in production)."""
    refuse_in_production()
    directory = sandbox_dir()
    with _gateways_lock:
        found = _gateways.get(directory)
        if found is None:
            found = _gateways[directory] = SandboxGateway(directory=directory)
        return found


class InProcessTransport:
    """The gateway called in this process, same bytes as over HTTP (the embedded default).

    Under ASGI Django runs sync views on one shared thread: a checkout view calling its own
    server's ``/sandbox/pay/v3/...`` over HTTP would wait on itself until the timeout."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def request(
        self, method: str, url: str, *, headers: Mapping[str, str], body: bytes | None, timeout: float
    ) -> HttpAnswer:
        split = urlsplit(url)
        if not url.startswith(self.base_url + "/"):
            raise PaymentsError(PaymentsCode.GATEWAY_UNAVAILABLE, reason="bad_url")
        full = split.path + (f"?{split.query}" if split.query else "")
        route = full[len(urlsplit(self.base_url).path.rstrip("/")) :]
        answer = gateway().handle_v3(method, full, route, headers, body or b"", base_url=self.base_url)
        return HttpAnswer(answer.status, Headers(answer.headers), answer.body)


class SandboxWechatPay(WechatPayV3):
    """WeChat Pay v3 against the sandbox gateway, on the sandbox's keys."""

    sandbox = True
    channels = frozenset({Channel.SANDBOX, Channel.WECHAT_JSAPI, Channel.WECHAT_MINI})

    def __init__(
        self,
        *,
        name: str = "sandbox",
        base_url: str = "",
        directory: str | Path | None = None,
        refund_notify_url: str = "",
        in_process: bool = False,
        transport: Transport | None = None,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        refuse_in_production()
        keys = SandboxKeys.load_or_create(Path(directory) if directory else sandbox_dir())
        base_url = base_url or str(getattr(settings, "PAYMENTS_SANDBOX_BASE_URL", ""))
        if in_process and transport is None:
            transport = InProcessTransport(base_url)
        super().__init__(
            name=name,
            merchant_id=keys.merchant_id,
            app_id=keys.app_id,
            merchant_serial=keys.merchant_serial,
            merchant_private_key=keys.merchant_private_key,
            apiv3_key=keys.apiv3_key,
            platform_keys={keys.platform_serial: keys.platform_certificate},
            base_url=base_url,
            refund_notify_url=refund_notify_url,
            merchant_name=keys.merchant_name,
            transport=transport,
            timeout=timeout,
            clock=clock,
        )

    def _default_openid(self) -> str:
        return "sandbox-openid"

    def _client_params(self, prepay_id: str) -> dict[str, str]:
        params = self.request_payment_params(prepay_id)
        params["sandboxTrade"] = prepay_id
        params["sandboxSheet"] = f"{urlsplit(self.base_url).path.rstrip('/')}/trades/{prepay_id}"
        return params
