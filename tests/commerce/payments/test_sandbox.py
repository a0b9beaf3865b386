"""The sandbox gateway end to end: the real WechatPayV3 adapter (as the "sandbox" provider)
over real HTTP to the gateway on the live server; callbacks POSTed to a notify endpoint on
loopback that verifies them with the same adapter."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import urllib.error
import urllib.request
from typing import Any

import pytest

from apps.commerce.payments import crypto
from apps.commerce.payments.base import Channel, NoticeStatus, PrepayRequest, get_provider
from apps.commerce.payments.errors import PaymentsCode, PaymentsError
from apps.commerce.payments.sandbox import SandboxGateway, SandboxKeys, SandboxWechatPay
from apps.commerce.payments.wechat import BEIJING

from .conftest import Receiver


def _http(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _prepay(receiver: Receiver, order_no: str = "ORD-SBX-0001", amount: int = 1230) -> Any:
    provider = get_provider("sandbox")
    return provider.prepay(
        PrepayRequest(
            order_no=order_no,
            amount_fen=amount,
            description="图文问诊 - 王医生",
            channel=Channel.SANDBOX,
            expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=15),
            notify_url=receiver.url,
        )
    )


def _sheet_url(live: Any, result: Any) -> str:
    return f"{live.url}{result.client_params['sandboxSheet']}"


def test_pay_query_refund_bill_end_to_end(sandbox: Any, receiver: Receiver) -> None:
    provider = get_provider("sandbox")
    assert isinstance(provider, SandboxWechatPay)
    result = _prepay(receiver)
    params = result.client_params
    assert result.provider == "sandbox" and result.provider_ref.startswith("wx")
    assert params["package"] == f"prepay_id={result.provider_ref}" and params["signType"] == "RSA"
    assert params["appId"] == provider.app_id
    # Unpaid: the query says not paid, nothing was called back.
    assert provider.query("ORD-SBX-0001") is None
    assert receiver.notices == [] and receiver.answers == []

    status, sheet = _http("GET", _sheet_url(sandbox, result))
    assert status == 200
    assert (sheet["amount_fen"], sheet["amount_display"], sheet["description"]) == (1230, "¥12.30", "图文问诊 - 王医生")
    assert sheet["merchant_name"] and sheet["state"] == "NOTPAY" and sheet["order_no"] == "ORD-SBX-0001"

    # Prepay again with the same order: the same prepay id (WeChat's behaviour).
    assert _prepay(receiver).provider_ref == result.provider_ref

    status, paid = _http("POST", _sheet_url(sandbox, result) + "/pay", params)
    assert status == 200 and paid["errMsg"] == "requestPayment:ok"
    # One signed callback, verified and decrypted by the adapter on the merchant side.
    assert [n.status for n in receiver.notices] == [NoticeStatus.PAID] and receiver.answers == [204]
    notice = receiver.notices[0]
    assert (notice.order_no, notice.amount_fen) == ("ORD-SBX-0001", 1230)
    assert (notice.merchant_id, notice.app_id) == (provider.merchant_id, provider.app_id)
    assert notice.transaction_id == paid["transaction_id"]
    assert paid["callbacks"][0]["status"] == "delivered"

    queried = provider.query("ORD-SBX-0001")
    assert queried is not None and queried.status == NoticeStatus.PAID
    assert (queried.transaction_id, queried.amount_fen) == (notice.transaction_id, 1230)

    # A paid trade cannot be paid twice or closed.
    status, again = _http("POST", _sheet_url(sandbox, result) + "/pay", params)
    assert status == 409 and again["code"] == PaymentsCode.SANDBOX_TRADE_STATE
    with pytest.raises(PaymentsError) as closed:
        provider.close("ORD-SBX-0001")
    assert closed.value.code == PaymentsCode.GATEWAY_ERROR and closed.value.detail["gateway_code"] == "ORDERPAID"

    refund = provider.refund(
        order_no="ORD-SBX-0001", refund_no="RF-SBX-0001", amount_fen=230, total_fen=1230, reason="患者申请"
    )
    assert refund.status == "processing" and refund.provider_refund_id
    # The same refund number again answers the same refund; more than what is left is refused.
    assert (
        provider.refund(
            order_no="ORD-SBX-0001", refund_no="RF-SBX-0001", amount_fen=230, total_fen=1230, reason="x"
        ).provider_refund_id
        == refund.provider_refund_id
    )
    with pytest.raises(PaymentsError) as too_much:
        provider.refund(order_no="ORD-SBX-0001", refund_no="RF-SBX-0002", amount_fen=1001, total_fen=1230, reason="x")
    assert too_much.value.detail["gateway_code"] == "NOT_ENOUGH"
    # The refund callback waits for the flush (inline mode), then arrives once, verified.
    assert len(receiver.notices) == 1
    status, _flushed = _http("POST", f"{sandbox.url}/sandbox/pay/callbacks/flush", {})
    assert status == 200
    assert [n.status for n in receiver.notices] == [NoticeStatus.PAID, NoticeStatus.REFUNDED]
    assert (receiver.notices[1].refund_no, receiver.notices[1].refund_amount_fen) == ("RF-SBX-0001", 230)

    today = dt.datetime.now(BEIJING).date()
    lines = provider.bill(today)
    assert [(b.kind, b.order_no, b.amount_fen, b.refund_no) for b in lines] == [
        ("charge", "ORD-SBX-0001", 1230, None),
        ("refund", "ORD-SBX-0001", 230, "RF-SBX-0001"),
    ]
    assert lines[0].transaction_id == notice.transaction_id
    assert provider.bill(today - dt.timedelta(days=3)) == []


def test_close_then_pay_is_refused_and_nothing_is_called_back(sandbox: Any, receiver: Receiver) -> None:
    provider = get_provider("sandbox")
    result = _prepay(receiver, "ORD-SBX-0002")
    status, cancelled = _http("POST", _sheet_url(sandbox, result) + "/cancel", {})
    assert status == 200 and cancelled["errMsg"] == "requestPayment:fail cancel"
    provider.close("ORD-SBX-0002")
    status, refused = _http("POST", _sheet_url(sandbox, result) + "/pay", result.client_params)
    assert (
        status == 409 and refused["code"] == PaymentsCode.SANDBOX_TRADE_STATE and refused["detail"]["state"] == "CLOSED"
    )
    assert provider.query("ORD-SBX-0002") is None
    assert receiver.notices == [] and receiver.answers == []
    status, missing = _http("GET", f"{sandbox.url}/sandbox/pay/trades/wx{'0' * 32}")
    assert status == 404 and missing["code"] == PaymentsCode.SANDBOX_TRADE_NOT_FOUND


def test_pay_with_a_forged_pay_sign_is_refused(sandbox: Any, receiver: Receiver) -> None:
    result = _prepay(receiver, "ORD-SBX-0003")
    forged = dict(result.client_params, timeStamp=str(int(result.client_params["timeStamp"]) + 1))
    status, body = _http("POST", _sheet_url(sandbox, result) + "/pay", forged)
    assert status == 401 and body["code"] == PaymentsCode.BAD_SIGNATURE
    assert _http("GET", _sheet_url(sandbox, result))[1]["state"] == "NOTPAY"
    assert get_provider("sandbox").query("ORD-SBX-0003") is None
    assert receiver.notices == [] and receiver.answers == []


def _pay_with(sandbox: Any, receiver: Receiver, order_no: str, controls: dict[str, Any]) -> Any:
    result = _prepay(receiver, order_no)
    status, body = _http("POST", _sheet_url(sandbox, result) + "/controls", controls)
    assert status == 200 and body["controls"] == controls
    status, _paid = _http("POST", _sheet_url(sandbox, result) + "/pay", result.client_params)
    assert status == 200
    return result


def test_repeat_sends_the_same_notification_freshly_signed(sandbox: Any, receiver: Receiver) -> None:
    _pay_with(sandbox, receiver, "ORD-SBX-0004", {"repeat": 3})
    assert len(receiver.notices) == 3 and receiver.refused == []
    assert len({n.notice_id for n in receiver.notices}) == 1
    assert len({n.transaction_id for n in receiver.notices}) == 1


def test_failed_callback_is_retried_on_flush(sandbox: Any, receiver: Receiver) -> None:
    result = _pay_with(sandbox, receiver, "ORD-SBX-0005", {"fail_callbacks": 1})
    assert receiver.notices == [] and receiver.answers == []
    _status, body = _http("GET", _sheet_url(sandbox, result) + "/callbacks")
    [entry] = body["callbacks"]
    assert entry["status"] == "pending" and [a["result"] for a in entry["attempts"]] == ["dropped"]
    _http("POST", f"{sandbox.url}/sandbox/pay/callbacks/flush", {"force": True})
    assert [n.order_no for n in receiver.notices] == ["ORD-SBX-0005"]
    [entry] = _http("GET", _sheet_url(sandbox, result) + "/callbacks")[1]["callbacks"]
    assert entry["status"] == "delivered" and [a["result"] for a in entry["attempts"]] == ["dropped", "204"]


def test_delayed_callback_is_not_sent_before_it_is_due(sandbox: Any, receiver: Receiver) -> None:
    result = _pay_with(sandbox, receiver, "ORD-SBX-0006", {"delay_seconds": 60})
    assert receiver.notices == []
    # Not due: a plain flush leaves it; forcing it sends it.
    _http("POST", f"{sandbox.url}/sandbox/pay/callbacks/flush", {"force": False})
    assert receiver.notices == []
    _http("POST", f"{sandbox.url}/sandbox/pay/callbacks/flush", {"force": True})
    assert [n.order_no for n in receiver.notices] == ["ORD-SBX-0006"]
    assert _http("GET", _sheet_url(sandbox, result) + "/callbacks")[1]["callbacks"][0]["status"] == "delivered"


def test_wrong_amount_reaches_the_merchant_as_signed_but_different(sandbox: Any, receiver: Receiver) -> None:
    _pay_with(sandbox, receiver, "ORD-SBX-0007", {"wrong_amount": True})
    # Signature and decryption are fine; the amount is for the order to refuse (commerce compares).
    assert [n.amount_fen for n in receiver.notices] == [1231]
    queried = get_provider("sandbox").query("ORD-SBX-0007")
    assert queried is not None and queried.amount_fen == 1230


def test_bad_signature_callback_is_refused_by_the_merchant_and_retried(sandbox: Any, receiver: Receiver) -> None:
    result = _pay_with(sandbox, receiver, "ORD-SBX-0008", {"bad_signature": True})
    assert receiver.notices == [] and receiver.refused == [PaymentsCode.BAD_SIGNATURE] and receiver.answers == [500]
    [entry] = _http("GET", _sheet_url(sandbox, result) + "/callbacks")[1]["callbacks"]
    assert entry["status"] == "pending" and [a["result"] for a in entry["attempts"]] == ["500"]


def test_parallel_duplicates_are_all_delivered(sandbox: Any, receiver: Receiver) -> None:
    result = _prepay(receiver, "ORD-SBX-0009")
    _http("POST", _sheet_url(sandbox, result) + "/controls", {"repeat": 5, "delay_seconds": 60})
    _http("POST", _sheet_url(sandbox, result) + "/pay", result.client_params)
    assert receiver.notices == []
    _http("POST", f"{sandbox.url}/sandbox/pay/callbacks/flush", {"force": True, "parallel": True})
    assert len(receiver.notices) == 5 and len({n.notice_id for n in receiver.notices}) == 1


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ("error_500", PaymentsCode.GATEWAY_UNAVAILABLE),
        ("malformed_json", PaymentsCode.GATEWAY_BAD_RESPONSE),
        ("bad_signature", PaymentsCode.GATEWAY_BAD_RESPONSE),
    ],
)
def test_gateway_faults_map_to_gateway_codes(sandbox: Any, receiver: Receiver, fault: str, code: str) -> None:
    _http("POST", f"{sandbox.url}/sandbox/pay/faults", {"next": [fault]})
    with pytest.raises(PaymentsError) as exc:
        _prepay(receiver, "ORD-SBX-0010")
    assert exc.value.code == code
    # The fault was for that answer only: the next call goes through.
    assert _prepay(receiver, "ORD-SBX-0010").provider_ref.startswith("wx")


def test_gateway_timeout_maps_to_unavailable(sandbox: Any, receiver: Receiver, settings: Any) -> None:
    slow = SandboxWechatPay(name="sandbox", base_url=f"{sandbox.url}/sandbox/pay", timeout=0.5)
    _http("POST", f"{sandbox.url}/sandbox/pay/faults", {"next": ["timeout"]})
    with pytest.raises(PaymentsError) as exc:
        slow.query("ORD-SBX-0011")
    assert exc.value.code == PaymentsCode.GATEWAY_UNAVAILABLE and exc.value.detail["reason"] == "timeout"


def test_a_request_signed_with_another_key_is_refused_by_the_gateway(
    sandbox: Any, receiver: Receiver, other_pair: Any, settings: Any
) -> None:
    keys = SandboxKeys.load_or_create(settings.PAYMENTS_SANDBOX_DIR)
    impostor = SandboxWechatPay(name="sandbox", base_url=f"{sandbox.url}/sandbox/pay")
    impostor._key = other_pair.private  # the merchant serial stays, the key is not the merchant's
    with pytest.raises(PaymentsError) as exc:
        impostor.query("ORD-SBX-0012")
    assert exc.value.code == PaymentsCode.GATEWAY_ERROR and exc.value.detail["gateway_code"] == "SIGN_ERROR"
    assert keys.merchant_id == impostor.merchant_id


def test_bad_order_numbers_are_refused_before_any_call(sandbox: Any, receiver: Receiver) -> None:
    with pytest.raises(PaymentsError) as exc:
        _prepay(receiver, "bad no!")
    assert exc.value.code == PaymentsCode.BAD_REQUEST and exc.value.detail == {"field": "order_no"}


def test_keys_are_generated_once_and_private(settings: Any, tmp_path: Any) -> None:
    settings.PAYMENTS_SANDBOX_DIR = tmp_path / "sbx"
    first = SandboxGateway(directory=tmp_path / "sbx")
    second = SandboxKeys.load_or_create(tmp_path / "sbx")
    assert first.keys == second
    mode = stat.S_IMODE(os.stat(tmp_path / "sbx" / "keys.json").st_mode)
    assert mode == 0o600
    assert len(second.apiv3_key) == 32 and second.merchant_serial != second.platform_serial


def test_sandbox_is_refused_in_production(settings: Any, tmp_path: Any) -> None:
    settings.PRODUCTION = True
    settings.PAYMENT_PROVIDERS = {"sandbox": {"class": "apps.commerce.payments.sandbox.SandboxWechatPay"}}
    with pytest.raises(PaymentsError) as exc:
        get_provider("sandbox")
    assert exc.value.code == PaymentsCode.SANDBOX_IN_PRODUCTION
    with pytest.raises(PaymentsError) as built:
        SandboxGateway(directory=tmp_path / "prod")
    assert built.value.code == PaymentsCode.SANDBOX_IN_PRODUCTION
    # Nothing was generated.
    assert not (tmp_path / "prod").exists()


def test_unknown_provider(settings: Any) -> None:
    settings.PAYMENT_PROVIDERS = {}
    with pytest.raises(PaymentsError) as exc:
        get_provider("wechat")
    assert exc.value.code == PaymentsCode.UNKNOWN_PROVIDER and exc.value.detail == {"provider": "wechat"}


@pytest.fixture
def in_process(settings: Any, tmp_path: Any, receiver: Receiver) -> SandboxWechatPay:
    """The embedded default: the provider calls the gateway in process (no live server)."""
    settings.PAYMENTS_SANDBOX_DIR = tmp_path / "sandbox"
    settings.PAYMENTS_SANDBOX_DELIVERY = "inline"
    settings.PAYMENT_PROVIDERS = {
        "sandbox": {
            "class": "apps.commerce.payments.sandbox.SandboxWechatPay",
            "base_url": "http://hub.invalid/sandbox/pay",
            "in_process": True,
        }
    }
    provider = get_provider("sandbox")
    assert isinstance(provider, SandboxWechatPay)
    return provider


def test_in_process_transport_is_the_same_signed_exchange(in_process: SandboxWechatPay, receiver: Receiver) -> None:
    from apps.commerce.payments.sandbox import gateway

    result = _prepay(receiver, "ORD-SBX-0101")
    assert in_process.query("ORD-SBX-0101") is None
    paid = gateway().pay(result.provider_ref, result.client_params)
    assert paid["errMsg"] == "requestPayment:ok"
    assert [n.order_no for n in receiver.notices] == ["ORD-SBX-0101"]
    queried = in_process.query("ORD-SBX-0101")
    assert queried is not None and queried.transaction_id == paid["transaction_id"]
    today = dt.datetime.now(BEIJING).date()
    assert [b.order_no for b in in_process.bill(today)] == ["ORD-SBX-0101"]
    # The bytes are still signed and checked: a tampered key is refused by the gateway.
    in_process._key = crypto.new_private_key()
    with pytest.raises(PaymentsError) as exc:
        in_process.query("ORD-SBX-0101")
    assert exc.value.detail["gateway_code"] == "SIGN_ERROR"


def test_thread_delivery_posts_the_callback_without_a_flush(
    in_process: SandboxWechatPay, receiver: Receiver, settings: Any
) -> None:
    """The embedded default's delivery: a daemon thread posts the callback after pay answers."""
    import time

    from apps.commerce.payments.sandbox import gateway

    settings.PAYMENTS_SANDBOX_DELIVERY = "thread"
    result = _prepay(receiver, "ORD-SBX-0102")
    gateway().pay(result.provider_ref, result.client_params)
    deadline = time.monotonic() + 20  # a bound for a loaded machine, not a timing assertion
    while not receiver.notices and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [n.order_no for n in receiver.notices] == ["ORD-SBX-0102"]
    assert gateway().callbacks_of(result.provider_ref)[0]["status"] in {"delivered", "sending"}


def test_a_callback_left_sending_by_a_dead_sender_is_sent_again(
    in_process: SandboxWechatPay, receiver: Receiver
) -> None:
    import time

    from apps.commerce.payments.sandbox import SEND_LEASE_SECONDS, gateway

    gw = gateway()
    result = _prepay(receiver, "ORD-SBX-0103")
    gw.set_controls(result.provider_ref, {"delay_seconds": 60})
    gw.pay(result.provider_ref, result.client_params)
    [entry] = gw.store.callbacks()
    entry.update(status="sending", claimed_at=time.time())  # a live sender holds it
    gw.store.save_callback(entry)
    gw.deliver_due(force=True)
    assert receiver.notices == []
    entry.update(claimed_at=time.time() - SEND_LEASE_SECONDS - 1)  # its sender died
    gw.store.save_callback(entry)
    gw.deliver_due(force=True)
    assert [n.order_no for n in receiver.notices] == ["ORD-SBX-0103"]
    assert gw.store.callbacks()[0]["status"] == "delivered"


def test_notification_for_an_order_is_freshly_signed_each_time(
    in_process: SandboxWechatPay, receiver: Receiver
) -> None:
    from apps.commerce.payments.sandbox import gateway

    gw = gateway()
    result = _prepay(receiver, "ORD-SBX-0104")
    with pytest.raises(PaymentsError) as unpaid:
        gw.notification_for("ORD-SBX-0104")
    assert unpaid.value.code == PaymentsCode.SANDBOX_TRADE_STATE
    gw.pay(result.provider_ref, result.client_params)
    first = gw.notification_for("ORD-SBX-0104", notification_id="EV-1")
    second = gw.notification_for("ORD-SBX-0104", notification_id="EV-1")
    assert first[0]["Wechatpay-Nonce"] != second[0]["Wechatpay-Nonce"]
    assert in_process.parse_notify(*first).notice_id == in_process.parse_notify(*second).notice_id == "EV-1"
    with pytest.raises(PaymentsError) as missing:
        gw.notification_for("ORD-SBX-9999")
    assert missing.value.code == PaymentsCode.SANDBOX_TRADE_NOT_FOUND
