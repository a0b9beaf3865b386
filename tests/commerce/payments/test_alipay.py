"""AlipayMini: the published notification of Alipay's SDK test suite, refusals, and the
requests it sends to a transport standing in for openapi.alipay.com (our RSA2 signature
checked with the app public key, answers signed with a generated Alipay key)."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest

from apps.commerce.payments import crypto
from apps.commerce.payments.alipay import AlipayMini, sign_content
from apps.commerce.payments.base import Channel, NoticeStatus, NotifyRejected, PrepayRequest
from apps.commerce.payments.errors import PaymentsCode, PaymentsError
from apps.commerce.payments.transport import Headers, HttpAnswer

from . import vectors
from .conftest import Clock, KeyPair

pytestmark = pytest.mark.django_db

APP_ID = "2021000000000001"
SELLER = "2088000000000001"


# --- the published notification --------------------------------------------------------


def test_published_notification_verifies(merchant_pair: KeyPair) -> None:
    fields = vectors.ALIPAY_NOTIFY_FIELDS
    alipay = AlipayMini(
        app_id=fields["app_id"],
        merchant_id=fields["seller_id"],
        app_private_key=merchant_pair.private_pem,
        alipay_public_key=vectors.ALIPAY_NOTIFY_PUBLIC_KEY,
    )
    notice = alipay.parse_notify({}, urlencode(fields).encode())
    assert notice.status == NoticeStatus.PAID and notice.provider == "alipay"
    assert (notice.order_no, notice.transaction_id, notice.amount_fen) == (
        "20190815155618536-564-57",
        "2019081522001468450512505578",
        10,
    )
    assert (notice.merchant_id, notice.app_id, notice.notice_id) == (
        "2088531891668739",
        "2019073166072302",
        "2019081500222155624068450559358070",
    )
    assert notice.occurred_at == dt.datetime(2019, 8, 15, 7, 56, 24, tzinfo=dt.UTC)
    # sign_type is not signed: the same notification without it verifies too.
    assert alipay.parse_notify({}, urlencode({k: v for k, v in fields.items() if k != "sign_type"}).encode())
    # Any changed field breaks it.
    for key, value in [("total_amount", "0.01"), ("out_trade_no", "20190815155618536-564-58"), ("seller_id", "x")]:
        with pytest.raises(NotifyRejected) as exc:
            alipay.parse_notify({}, urlencode(dict(fields, **{key: value})).encode())
        assert exc.value.code == PaymentsCode.BAD_SIGNATURE


# --- our own notifications (a generated Alipay key) --------------------------------------


@pytest.fixture
def alipay(merchant_pair: KeyPair, platform_pair: KeyPair, clock: Clock) -> AlipayMini:
    return AlipayMini(
        app_id=APP_ID,
        merchant_id=SELLER,
        app_private_key=merchant_pair.private_pem,
        alipay_public_key=platform_pair.public_pem,
        clock=clock,
    )


def _notify(key: crypto.PrivateKey, **over: str) -> bytes:
    fields = {
        "notify_time": "2025-12-01 08:00:07",
        "notify_type": "trade_status_sync",
        "notify_id": "2025120100222080007000000000000001",
        "charset": "utf-8",
        "version": "1.0",
        "sign_type": "RSA2",
        "app_id": APP_ID,
        "auth_app_id": APP_ID,
        "trade_no": "2025120122001400000000000001",
        "out_trade_no": "ORD20251201001",
        "seller_id": SELLER,
        "buyer_id": "2088102000000001",
        "trade_status": "TRADE_SUCCESS",
        "total_amount": "12.30",
        "receipt_amount": "12.30",
        "subject": "图文问诊",
        "gmt_create": "2025-12-01 08:00:01",
        "gmt_payment": "2025-12-01 08:00:05",
        "fund_bill_list": '[{"amount":"12.30","fundChannel":"ALIPAYACCOUNT"}]',
        "passback_params": "",
    }
    fields.update(over)
    fields = {k: v for k, v in fields.items() if v is not None}
    fields["sign"] = crypto.sign_sha256_rsa(key, sign_content(fields, exclude=frozenset({"sign", "sign_type"})))
    return urlencode(fields).encode()


def test_good_notification_and_its_answer(alipay: AlipayMini, platform_pair: KeyPair) -> None:
    notice = alipay.parse_notify({"Content-Type": "application/x-www-form-urlencoded"}, _notify(platform_pair.private))
    assert (notice.status, notice.amount_fen, notice.order_no) == (NoticeStatus.PAID, 1230, "ORD20251201001")
    assert (notice.merchant_id, notice.app_id) == (SELLER, APP_ID)
    assert alipay.notify_ack(True) == (200, "text/plain; charset=utf-8", b"success")
    assert alipay.notify_ack(False)[2] == b"failure"


def test_refusals(alipay: AlipayMini, platform_pair: KeyPair, other_pair: KeyPair) -> None:
    def code(body: bytes) -> str:
        with pytest.raises(NotifyRejected) as exc:
            alipay.parse_notify({}, body)
        return exc.value.code

    assert code(_notify(other_pair.private)) == PaymentsCode.BAD_SIGNATURE
    assert code(_notify(platform_pair.private).replace(b"12.30", b"1.23")) == PaymentsCode.BAD_SIGNATURE
    unsigned = urlencode({k: v for k, v in parse_qsl(_notify(platform_pair.private).decode()) if k != "sign"})
    assert code(unsigned.encode()) == PaymentsCode.BAD_SIGNATURE
    assert code(_notify(platform_pair.private, app_id="2021000000000002")) == PaymentsCode.WRONG_MERCHANT
    assert code(_notify(platform_pair.private, seller_id="2088000000000002")) == PaymentsCode.WRONG_MERCHANT
    assert code(_notify(platform_pair.private, trade_status="WAIT_BUYER_PAY")) == PaymentsCode.MALFORMED_NOTIFY
    assert code(_notify(platform_pair.private, total_amount="12.345")) == PaymentsCode.MALFORMED_NOTIFY
    assert code(b"\xff\xfe") == PaymentsCode.MALFORMED_NOTIFY


def test_refund_and_close_notifications(alipay: AlipayMini, platform_pair: KeyPair) -> None:
    refunded = alipay.parse_notify(
        {},
        _notify(platform_pair.private, refund_fee="2.30", out_biz_no="RF20251201001", gmt_refund="2025-12-01 09:00:00"),
    )
    assert refunded.status == NoticeStatus.REFUNDED
    assert (refunded.refund_no, refunded.refund_amount_fen) == ("RF20251201001", 230)
    assert refunded.occurred_at == dt.datetime(2025, 12, 1, 1, 0, tzinfo=dt.UTC)
    closed = alipay.parse_notify({}, _notify(platform_pair.private, trade_status="TRADE_CLOSED"))
    assert closed.status == NoticeStatus.CLOSED


# --- requests ----------------------------------------------------------------------------


@dataclass
class AlipayServer:
    """Stands in for openapi.alipay.com: verifies our RSA2 signature, signs its answers."""

    app_public: crypto.PublicKey
    alipay_key: crypto.PrivateKey
    reply: Callable[[str, dict[str, Any]], Any] = lambda method, biz: {"code": "10000", "msg": "Success"}
    seen: list[dict[str, str]] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    forge: bool = False

    def request(
        self, method: str, url: str, *, headers: Mapping[str, str], body: bytes | None, timeout: float
    ) -> HttpAnswer:
        if method == "GET":
            self.seen.append({"GET": url})
            return HttpAnswer(200, Headers(), self.files[url])
        assert url == "https://openapi.alipay.com/gateway.do"
        assert headers["Content-Type"] == "application/x-www-form-urlencoded;charset=utf-8"
        params = dict(parse_qsl((body or b"").decode(), keep_blank_values=True))
        self.seen.append(params)
        assert crypto.verify_sha256_rsa(self.app_public, sign_content(params), params["sign"])
        out = self.reply(params["method"], json.loads(params["biz_content"]))
        if isinstance(out, HttpAnswer):
            return out
        node = json.dumps(out, ensure_ascii=False, separators=(",", ":"))
        signature = crypto.sign_sha256_rsa(self.alipay_key, node + ("x" if self.forge else ""))
        key = params["method"].replace(".", "_") + "_response"
        raw = f'{{"{key}":{node},"sign":"{signature}"}}'
        return HttpAnswer(200, Headers({"Content-Type": "application/json;charset=utf-8"}), raw.encode())


@pytest.fixture
def server(alipay: AlipayMini, merchant_pair: KeyPair, platform_pair: KeyPair) -> AlipayServer:
    found = AlipayServer(crypto.load_public_key(merchant_pair.public_pem), platform_pair.private)
    alipay.transport = found
    return found


def _req(**over: Any) -> PrepayRequest:
    args: dict[str, Any] = {
        "order_no": "ORD20251201001",
        "amount_fen": 1230,
        "description": "图文问诊",
        "channel": Channel.ALIPAY_MINI,
        "expires_at": dt.datetime(2025, 12, 1, 0, 15, tzinfo=dt.UTC),
        "notify_url": "https://hospital.example.org/api/v1/commerce/notify/alipay",
        "payer_openid": "2088102000000001",
    }
    args.update(over)
    return PrepayRequest(**args)


def test_trade_create_request_shape(alipay: AlipayMini, server: AlipayServer) -> None:
    server.reply = lambda method, biz: {
        "code": "10000",
        "msg": "Success",
        "out_trade_no": biz["out_trade_no"],
        "trade_no": "2025120122001400000000000001",
    }
    result = alipay.prepay(_req())
    assert result.client_params == {"tradeNO": "2025120122001400000000000001"}
    assert result.provider_ref == "2025120122001400000000000001"
    [params] = server.seen
    assert set(params) == {
        "app_id",
        "method",
        "format",
        "charset",
        "sign_type",
        "timestamp",
        "version",
        "biz_content",
        "notify_url",
        "sign",
    }
    assert (params["method"], params["format"], params["charset"], params["sign_type"], params["version"]) == (
        "alipay.trade.create",
        "JSON",
        "utf-8",
        "RSA2",
        "1.0",
    )
    assert params["timestamp"] == "2025-12-01 08:00:00"  # Beijing time of the test clock
    assert params["notify_url"] == "https://hospital.example.org/api/v1/commerce/notify/alipay"
    assert json.loads(params["biz_content"]) == {
        "out_trade_no": "ORD20251201001",
        "total_amount": "12.30",
        "subject": "图文问诊",
        "product_code": "JSAPI_PAY",
        "op_app_id": APP_ID,
        "time_expire": "2025-12-01 08:15:00",
        "buyer_id": "2088102000000001",
    }
    # A newer-style open id goes in buyer_open_id.
    alipay.prepay(_req(payer_openid="074a1CcTG1LelxKe4xQC0zgNdId0nxi95b5lsNpazWYoCo5"))
    assert "buyer_open_id" in json.loads(server.seen[1]["biz_content"])


def test_query_close_refund(alipay: AlipayMini, server: AlipayServer) -> None:
    answers = iter(
        [
            {
                "code": "10000",
                "msg": "Success",
                "trade_no": "2025120122001400000000000001",
                "out_trade_no": "ORD20251201001",
                "trade_status": "TRADE_SUCCESS",
                "total_amount": "12.30",
                "send_pay_date": "2025-12-01 08:00:05",
            },
            {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_NOT_EXIST", "sub_msg": "交易不存在"},
            {
                "code": "10000",
                "msg": "Success",
                "trade_no": "1",
                "out_trade_no": "ORD20251201003",
                "trade_status": "WAIT_BUYER_PAY",
                "total_amount": "1.00",
            },
            {"code": "10000", "msg": "Success", "trade_no": "1", "out_trade_no": "ORD20251201003"},
            {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_NOT_EXIST"},
            {
                "code": "10000",
                "msg": "Success",
                "trade_no": "2025120122001400000000000001",
                "fund_change": "Y",
                "refund_fee": "2.30",
            },
        ]
    )
    server.reply = lambda method, biz: next(answers)
    paid = alipay.query("ORD20251201001")
    assert paid is not None and (paid.status, paid.amount_fen, paid.merchant_id) == (NoticeStatus.PAID, 1230, SELLER)
    assert alipay.query("ORD20251201002") is None
    assert alipay.query("ORD20251201003") is None
    alipay.close("ORD20251201003")
    alipay.close("ORD20251201004")  # never opened: nothing to close
    refund = alipay.refund(
        order_no="ORD20251201001", refund_no="RF20251201001", amount_fen=230, total_fen=1230, reason="患者申请"
    )
    assert refund.status == "success"
    assert [p["method"] for p in server.seen] == [
        "alipay.trade.query",
        "alipay.trade.query",
        "alipay.trade.query",
        "alipay.trade.close",
        "alipay.trade.close",
        "alipay.trade.refund",
    ]
    assert json.loads(server.seen[-1]["biz_content"]) == {
        "out_trade_no": "ORD20251201001",
        "refund_amount": "2.30",
        "out_request_no": "RF20251201001",
        "refund_reason": "患者申请",
    }


def _bill_zip() -> bytes:
    text = "\r\n".join(
        [
            "#支付宝交易记录明细查询",
            "#账号：[20880000000000010156]",
            "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注",
            "2025120122001400000000000001\t,ORD20251201001\t,交易,图文问诊,2025-12-01 08:00:01,"
            "2025-12-01 08:00:05,,,,,138****0000,12.30,12.30,0.00,0.00,0.00,0.00,0.00,,0.00,0.00,,-0.07,0.00,",
            "2025120122001400000000000001\t,ORD20251201001\t,退款,图文问诊,2025-12-01 08:00:01,"
            "2025-12-01 09:00:00,,,,,138****0000,-2.30,-2.30,0.00,0.00,0.00,0.00,0.00,,0.00,0.00,"
            "RF20251201001\t,0.01,0.00,",
            "#-----------------------------------------业务明细列表结束------------------------------------",
            "#交易合计：1笔，商家实收共12.30元",
        ]
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("20880000000000010156_20251201_业务明细.csv", text.encode("gb18030"))
        archive.writestr("20880000000000010156_20251201_业务明细(汇总).csv", "#汇总".encode("gb18030"))
    return buf.getvalue()


def test_bill_download(alipay: AlipayMini, server: AlipayServer) -> None:
    url = "https://dwbillcenter.alipay.com/downloadBillFile.resource?bizType=trade&userId=20880000000000010156&fileType=csv.zip&bizDates=20251201&downloadFileName=x.csv.zip&fileId=%2Ftrade%2F20881"
    server.files[url] = _bill_zip()
    server.reply = lambda method, biz: {"code": "10000", "msg": "Success", "bill_download_url": url}
    lines = alipay.bill(dt.date(2025, 12, 1))
    assert json.loads(server.seen[0]["biz_content"]) == {"bill_type": "trade", "bill_date": "2025-12-01"}
    assert [(b.kind, b.order_no, b.amount_fen, b.refund_no) for b in lines] == [
        ("charge", "ORD20251201001", 1230, None),
        ("refund", "ORD20251201001", 230, "RF20251201001"),
    ]
    assert lines[1].occurred_at == dt.datetime(2025, 12, 1, 1, 0, tzinfo=dt.UTC)
    # A download URL off Alipay's hosts is not fetched.
    server.seen.clear()
    server.reply = lambda method, biz: {
        "code": "10000",
        "msg": "Success",
        "bill_download_url": "https://alipay.com.evil.example/x",
    }
    with pytest.raises(PaymentsError) as exc:
        alipay.bill(dt.date(2025, 12, 1))
    assert exc.value.code == PaymentsCode.GATEWAY_BAD_RESPONSE and len(server.seen) == 1


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (HttpAnswer(502, Headers(), b"bad gateway"), PaymentsCode.GATEWAY_UNAVAILABLE),
        (HttpAnswer(200, Headers(), b"{not json"), PaymentsCode.GATEWAY_BAD_RESPONSE),
        (HttpAnswer(200, Headers(), b'{"other_response":{}}'), PaymentsCode.GATEWAY_BAD_RESPONSE),
        (
            {"code": "20000", "msg": "Service Currently Unavailable", "sub_code": "isp.unknow-error"},
            PaymentsCode.GATEWAY_UNAVAILABLE,
        ),
        ({"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.SYSTEM_ERROR"}, PaymentsCode.GATEWAY_ERROR),
    ],
)
def test_gateway_failures_map_to_codes(alipay: AlipayMini, server: AlipayServer, answer: Any, code: str) -> None:
    server.reply = lambda method, biz: answer
    with pytest.raises(PaymentsError) as exc:
        alipay.prepay(_req())
    assert exc.value.code == code


def test_badly_signed_success_is_refused(alipay: AlipayMini, server: AlipayServer) -> None:
    server.forge = True
    server.reply = lambda method, biz: {"code": "10000", "msg": "Success", "trade_no": "2025120122001400000000000001"}
    with pytest.raises(PaymentsError) as exc:
        alipay.prepay(_req())
    assert (
        exc.value.code == PaymentsCode.GATEWAY_BAD_RESPONSE and exc.value.detail["reason"] == PaymentsCode.BAD_SIGNATURE
    )
