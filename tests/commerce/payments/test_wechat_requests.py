"""The requests WechatPayV3 sends to api.mch.weixin.qq.com, seen by a transport that stands
in for the outside WeChat Pay server (it checks our signature and signs its answers with
the test platform key), and how the gateway's failures map to payments.gateway_* codes."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from apps.commerce.payments import crypto
from apps.commerce.payments.base import Channel, NoticeStatus, PrepayRequest
from apps.commerce.payments.errors import PaymentsCode, PaymentsError
from apps.commerce.payments.transport import Headers, HttpAnswer, UrllibTransport
from apps.commerce.payments.wechat import (
    TRADE_BILL_HEADER,
    WechatPayV3,
    answer_message,
    parse_authorization,
    request_message,
)

from .conftest import APPID, MCHID, Clock, KeyPair, transaction

pytestmark = pytest.mark.django_db


@dataclass
class Seen:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes


@dataclass
class WechatServer:
    """Stands in for api.mch.weixin.qq.com: each answer is produced by ``reply``."""

    merchant: KeyPair
    platform: KeyPair
    clock: Clock
    reply: Callable[[Seen], tuple[int, Any]] = lambda seen: (200, {})
    seen: list[Seen] = field(default_factory=list)
    sign: bool = True

    def request(
        self, method: str, url: str, *, headers: Mapping[str, str], body: bytes | None, timeout: float
    ) -> HttpAnswer:
        seen = Seen(method, url, dict(headers), body or b"")
        self.seen.append(seen)
        status, payload = self.reply(seen)
        raw = payload if isinstance(payload, bytes) else (json.dumps(payload).encode() if payload is not None else b"")
        out = {"Content-Type": "application/json"}
        if self.sign:
            ts, nonce = (
                str(int(self.clock.now)),
                "SRV" + hashlib.sha256(raw + str(len(self.seen)).encode()).hexdigest()[:29],
            )
            out.update(
                {
                    "Wechatpay-Serial": self.platform.serial,
                    "Wechatpay-Timestamp": ts,
                    "Wechatpay-Nonce": nonce,
                    "Wechatpay-Signature": crypto.sign_sha256_rsa(
                        self.platform.private, answer_message(ts, nonce, raw)
                    ),
                }
            )
        return HttpAnswer(status, Headers(out), raw)

    def check_signature(self, seen: Seen) -> dict[str, str]:
        auth = parse_authorization(seen.headers["Authorization"])
        path = seen.url.removeprefix("https://api.mch.weixin.qq.com")
        message = request_message(seen.method, path, auth["timestamp"], auth["nonce_str"], seen.body.decode())
        assert crypto.verify_sha256_rsa(crypto.load_public_key(self.merchant.public_pem), message, auth["signature"])
        return auth


@pytest.fixture
def server(merchant_pair: KeyPair, platform_pair: KeyPair, clock: Clock, wechat: WechatPayV3) -> WechatServer:
    found = WechatServer(merchant_pair, platform_pair, clock)
    wechat.transport = found
    return found


def _req(**over: Any) -> PrepayRequest:
    args: dict[str, Any] = {
        "order_no": "ORD20251201001",
        "amount_fen": 1230,
        "description": "图文问诊",
        "channel": Channel.WECHAT_MINI,
        "expires_at": dt.datetime(2025, 12, 1, 0, 15, tzinfo=dt.UTC),
        "notify_url": "https://hospital.example.org/api/v1/commerce/notify/wechat",
        "payer_openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
    }
    args.update(over)
    return PrepayRequest(**args)


def test_prepay_request_shape(wechat: WechatPayV3, server: WechatServer, merchant_pair: KeyPair) -> None:
    server.reply = lambda seen: (200, {"prepay_id": "wx26112221580621e9b071c00d9e093b0000"})
    result = wechat.prepay(_req())
    [seen] = server.seen
    assert (seen.method, seen.url) == ("POST", "https://api.mch.weixin.qq.com/v3/pay/transactions/jsapi")
    assert seen.headers["Content-Type"] == "application/json" and seen.headers["Accept"] == "application/json"
    assert seen.headers["User-Agent"]
    auth = server.check_signature(seen)
    assert (
        auth["mchid"] == MCHID
        and auth["serial_no"] == merchant_pair.serial
        and auth["timestamp"] == str(int(server.clock.now))
    )
    assert json.loads(seen.body) == {
        "appid": APPID,
        "mchid": MCHID,
        "description": "图文问诊",
        "out_trade_no": "ORD20251201001",
        "time_expire": "2025-12-01T08:15:00+08:00",
        "notify_url": "https://hospital.example.org/api/v1/commerce/notify/wechat",
        "amount": {"total": 1230, "currency": "CNY"},
        "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
    }
    assert result.provider_ref == "wx26112221580621e9b071c00d9e093b0000"
    assert result.client_params["package"] == "prepay_id=wx26112221580621e9b071c00d9e093b0000"


def test_prepay_refuses_bad_input_before_sending(wechat: WechatPayV3, server: WechatServer) -> None:
    for bad, field_name in [
        (_req(order_no="x"), "order_no"),
        (_req(amount_fen=0), "amount_fen"),
        (_req(payer_openid=None), "payer_openid"),
        (_req(channel=Channel.ALIPAY_MINI), "channel"),
        (_req(expires_at=dt.datetime(2025, 12, 1, 0, 15)), "expires_at"),
    ]:
        with pytest.raises(PaymentsError) as exc:
            wechat.prepay(bad)
        assert exc.value.code == PaymentsCode.BAD_REQUEST and exc.value.detail["field"] == field_name
    assert server.seen == []


def test_query_close_refund_shapes(wechat: WechatPayV3, server: WechatServer) -> None:
    answers = iter(
        [
            (200, transaction()),
            (404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"}),
            (200, transaction(trade_state="NOTPAY", transaction_id="")),
            (204, None),
            (200, {"refund_id": "50000000382019052709732678859", "out_refund_no": "RF1234567", "status": "PROCESSING"}),
        ]
    )
    server.reply = lambda seen: next(answers)
    paid = wechat.query("ORD20251201001")
    assert paid is not None and paid.status == NoticeStatus.PAID and paid.amount_fen == 1230
    assert wechat.query("ORD20251201002") is None
    assert wechat.query("ORD20251201003") is None
    wechat.close("ORD20251201003")
    refund = wechat.refund(
        order_no="ORD20251201001", refund_no="RF1234567", amount_fen=230, total_fen=1230, reason="患者申请"
    )
    assert (refund.status, refund.provider_refund_id) == ("processing", "50000000382019052709732678859")
    urls = [(s.method, s.url) for s in server.seen]
    base = "https://api.mch.weixin.qq.com"
    assert urls == [
        ("GET", f"{base}/v3/pay/transactions/out-trade-no/ORD20251201001?mchid={MCHID}"),
        ("GET", f"{base}/v3/pay/transactions/out-trade-no/ORD20251201002?mchid={MCHID}"),
        ("GET", f"{base}/v3/pay/transactions/out-trade-no/ORD20251201003?mchid={MCHID}"),
        ("POST", f"{base}/v3/pay/transactions/out-trade-no/ORD20251201003/close"),
        ("POST", f"{base}/v3/refund/domestic/refunds"),
    ]
    for seen in server.seen:
        server.check_signature(seen)  # the query string is part of what is signed
    assert server.seen[0].body == b"" and "Content-Type" not in server.seen[0].headers
    assert json.loads(server.seen[3].body) == {"mchid": MCHID}
    assert json.loads(server.seen[4].body) == {
        "out_trade_no": "ORD20251201001",
        "out_refund_no": "RF1234567",
        "reason": "患者申请",
        "amount": {"refund": 230, "total": 1230, "currency": "CNY"},
    }


def test_refund_amount_is_checked_before_sending(wechat: WechatPayV3, server: WechatServer) -> None:
    with pytest.raises(PaymentsError) as exc:
        wechat.refund(order_no="ORD20251201001", refund_no="RF1234567", amount_fen=1231, total_fen=1230, reason="x")
    assert exc.value.detail == {"field": "amount_fen"} and server.seen == []


def test_trade_bill_download_and_parse(wechat: WechatPayV3, server: WechatServer) -> None:
    head = ["0", "", "4200000985202512011234567890", "ORD20251201001", "oUpF8u", "JSAPI"]
    charge = ["2025-12-01 08:00:05", APPID, MCHID, *head, "SUCCESS", "CMC", "CNY", "12.30", "0.00", "0", "0"]
    charge += ["0.00", "0.00", "", "", "图文问诊", "", "0.07380", "0.60%", "12.30", "0.00", ""]
    refund = ["2025-12-01 09:00:00", APPID, MCHID, *head, "REFUND", "CMC", "CNY", "0.00", "0.00"]
    refund += ["50000000382019052709732678859", "RF1234567", "2.30", "0.00", "ORIGINAL", "SUCCESS", "图文问诊", ""]
    refund += ["-0.01380", "0.60%", "12.30", "2.30", ""]
    assert len(charge) == len(refund) == len(TRADE_BILL_HEADER.split(","))
    rows = [",".join("`" + c for c in row) for row in (charge, refund)]
    csv_bytes = ("\r\n".join([TRADE_BILL_HEADER, *rows, "总交易单数,应结订单总金额", "`2,`12.30"]) + "\r\n").encode()

    def reply(seen: Seen) -> tuple[int, Any]:
        if "/v3/bill/tradebill" in seen.url:
            return 200, {
                "hash_type": "SHA1",
                "hash_value": hashlib.sha1(csv_bytes).hexdigest(),
                "download_url": "https://api.mch.weixin.qq.com/v3/billdownload/file?token=6XIv5TUPto7pByrTQKhd6kwvyKLG2uY2wMMR8cNXqaA_Cv_isgaUtBzp4QtiozLO",
            }
        return 200, csv_bytes

    server.reply = reply
    lines = wechat.bill(dt.date(2025, 12, 1))
    assert server.seen[0].url == "https://api.mch.weixin.qq.com/v3/bill/tradebill?bill_date=2025-12-01&bill_type=ALL"
    assert server.seen[1].url.startswith("https://api.mch.weixin.qq.com/v3/billdownload/file?token=")
    server.check_signature(server.seen[1])
    assert [(b.kind, b.order_no, b.amount_fen, b.refund_no) for b in lines] == [
        ("charge", "ORD20251201001", 1230, None),
        ("refund", "ORD20251201001", 230, "RF1234567"),
    ]
    assert lines[0].occurred_at == dt.datetime(2025, 12, 1, 0, 0, 5, tzinfo=dt.UTC)

    # A file that does not match the signed hash is refused.
    server.seen.clear()
    server.reply = lambda seen: reply(seen) if "tradebill" in seen.url else (200, csv_bytes + b"`1")
    with pytest.raises(PaymentsError) as exc:
        wechat.bill(dt.date(2025, 12, 1))
    assert exc.value.code == PaymentsCode.GATEWAY_BAD_RESPONSE and exc.value.detail == {"field": "hash_value"}


def test_bill_download_url_on_another_host_is_not_fetched(wechat: WechatPayV3, server: WechatServer) -> None:
    server.reply = lambda seen: (
        200,
        {"hash_type": "SHA1", "hash_value": "0", "download_url": "https://evil.example.com/x"},
    )
    with pytest.raises(PaymentsError) as exc:
        wechat.bill(dt.date(2025, 12, 1))
    assert exc.value.code == PaymentsCode.GATEWAY_BAD_RESPONSE
    assert [s.url for s in server.seen] == [
        "https://api.mch.weixin.qq.com/v3/bill/tradebill?bill_date=2025-12-01&bill_type=ALL"
    ]


def test_no_bill_for_the_day(wechat: WechatPayV3, server: WechatServer) -> None:
    server.reply = lambda seen: (400, {"code": "NO_STATEMENT_EXIST", "message": "要下载的账单不存在"})
    assert wechat.bill(dt.date(2025, 12, 1)) == []


@pytest.mark.parametrize(
    ("status", "payload", "signed", "code"),
    [
        (500, {"code": "SYSTEM_ERROR", "message": "系统错误"}, True, PaymentsCode.GATEWAY_UNAVAILABLE),
        (503, b"<html>busy</html>", False, PaymentsCode.GATEWAY_UNAVAILABLE),
        (429, {"code": "FREQUENCY_LIMITED", "message": "频率超限"}, True, PaymentsCode.GATEWAY_UNAVAILABLE),
        (400, {"code": "PARAM_ERROR", "message": "参数错误"}, True, PaymentsCode.GATEWAY_ERROR),
        (400, b"<html>bad</html>", False, PaymentsCode.GATEWAY_BAD_RESPONSE),
        (200, b"{not json", True, PaymentsCode.GATEWAY_BAD_RESPONSE),
        (200, {"prepay_id": "wx1"}, False, PaymentsCode.GATEWAY_BAD_RESPONSE),  # unsigned answer
        (200, {"no_prepay_id": 1}, True, PaymentsCode.GATEWAY_BAD_RESPONSE),
        (200, [1, 2], True, PaymentsCode.GATEWAY_BAD_RESPONSE),
    ],
)
def test_gateway_failures_map_to_codes(
    wechat: WechatPayV3, server: WechatServer, status: int, payload: Any, signed: bool, code: str
) -> None:
    server.reply = lambda seen: (status, payload)
    server.sign = signed
    with pytest.raises(PaymentsError) as exc:
        wechat.prepay(_req())
    assert exc.value.code == code
    if code == PaymentsCode.GATEWAY_ERROR:
        assert exc.value.detail == {"gateway_status": 400, "gateway_code": "PARAM_ERROR"}


def test_answer_signed_by_an_unknown_platform_key_is_refused(
    wechat: WechatPayV3, server: WechatServer, other_pair: KeyPair
) -> None:
    server.platform = other_pair
    server.reply = lambda seen: (200, {"prepay_id": "wx1"})
    with pytest.raises(PaymentsError) as exc:
        wechat.prepay(_req())
    assert (
        exc.value.code == PaymentsCode.GATEWAY_BAD_RESPONSE
        and exc.value.detail["reason"] == PaymentsCode.UNKNOWN_SERIAL
    )


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


def test_real_http_timeout_and_refused_connection(wechat: WechatPayV3, silent_port: int) -> None:
    wechat.transport = UrllibTransport()
    wechat.timeout = 0.3
    wechat.base_url = f"http://127.0.0.1:{silent_port}"
    with pytest.raises(PaymentsError) as exc:
        wechat.query("ORD20251201001")
    assert exc.value.code == PaymentsCode.GATEWAY_UNAVAILABLE and exc.value.detail["reason"] == "timeout"
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    wechat.base_url = f"http://127.0.0.1:{port}"
    with pytest.raises(PaymentsError) as refused:
        wechat.query("ORD20251201001")
    assert refused.value.code == PaymentsCode.GATEWAY_UNAVAILABLE and refused.value.detail["reason"] == "connection"


def test_bill_amounts_are_exact_fen() -> None:
    from apps.commerce.payments.wechat import parse_trade_bill

    columns = TRADE_BILL_HEADER.split(",")
    row = dict.fromkeys(columns, "")
    row.update({"交易时间": "2025-12-01 08:00:05", "交易状态": "SUCCESS", "商户订单号": "ORD20251201001"})
    row.update({"微信订单号": "4200000985202512011234567890", "订单金额": "12.345"})
    raw = (TRADE_BILL_HEADER + "\r\n" + ",".join("`" + row[c] for c in columns) + "\r\n").encode()
    with pytest.raises(PaymentsError) as exc:
        parse_trade_bill(raw)
    assert exc.value.code == PaymentsCode.GATEWAY_BAD_RESPONSE
    row["订单金额"] = "12.34"
    raw = (TRADE_BILL_HEADER + "\r\n" + ",".join("`" + row[c] for c in columns) + "\r\n").encode()
    assert [b.amount_fen for b in parse_trade_bill(raw)] == [1234]
