"""WeChat Pay v3 signing and notifications: the published SDK vectors, then every refusal
with its code (keys generated in the tests)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from apps.commerce.payments import crypto
from apps.commerce.payments.base import NoticeStatus, NotifyRejected
from apps.commerce.payments.errors import PaymentsCode
from apps.commerce.payments.wechat import WechatPayV3, answer_message, pay_sign_message, request_message

from . import vectors
from .conftest import APPID, MCHID, Clock, KeyPair, transaction, wechat_notify

pytestmark = pytest.mark.django_db


# --- the providers' published examples -----------------------------------------------


def test_request_signature_matches_the_wechatpay_go_test_vector() -> None:
    key = crypto.load_private_key(vectors.WECHAT_TEST_PRIVATE_KEY)
    assert crypto.sign_sha256_rsa(key, vectors.WECHAT_SIGN_MESSAGE) == vectors.WECHAT_EXPECTED_SIGNATURE


def test_authorization_header_is_the_documented_format_over_the_documented_message() -> None:
    provider = WechatPayV3(
        merchant_id="1900009191",
        app_id=APPID,
        merchant_serial="1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C",
        merchant_private_key=vectors.WECHAT_TEST_PRIVATE_KEY,
        apiv3_key="0" * 32,
        platform_keys={},
    )
    header = provider.authorization(
        "GET", "/v3/certificates", "", timestamp="1554208460", nonce="593BEC0C930BF1AFEB40B4A08C8FB242"
    )
    schema, _, fields = header.partition(" ")
    assert schema == "WECHATPAY2-SHA256-RSA2048"
    parts = dict(p.split("=", 1) for p in fields.split(","))
    assert list(parts) == ["mchid", "nonce_str", "signature", "timestamp", "serial_no"]
    assert parts["mchid"] == '"1900009191"' and parts["timestamp"] == '"1554208460"'
    assert parts["serial_no"] == '"1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C"'
    # The documented string to sign of this example (pay.weixin.qq.com 签名生成), checked with
    # the public half of the published test key (the wechatpay-go test certificate).
    message = "GET\n/v3/certificates\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n\n"
    assert request_message("GET", "/v3/certificates", "1554208460", "593BEC0C930BF1AFEB40B4A08C8FB242", "") == message
    public = crypto.load_public_key(vectors.WECHAT_PLATFORM_CERTIFICATE)
    assert crypto.verify_sha256_rsa(public, message, parts["signature"].strip('"'))
    assert not crypto.verify_sha256_rsa(public, message.replace("GET", "POST"), parts["signature"].strip('"'))


def test_published_notification_verifies_and_decrypts() -> None:
    provider = WechatPayV3(
        merchant_id="1234567890",
        app_id="054aa7d7a2a54ab5898df65bd96f001c",
        merchant_serial="F5765756002FDD77",
        merchant_private_key=vectors.WECHAT_TEST_PRIVATE_KEY,
        apiv3_key="0" * 32,
        platform_keys={"D7CE59D1F522D701": vectors.WECHAT_PLATFORM_CERTIFICATE},
        clock=lambda: vectors.WECHAT_NOTIFY_NOW,
    )
    assert provider.verify_signed(vectors.WECHAT_NOTIFY_HEADERS, vectors.WECHAT_NOTIFY_BODY) is None
    tampered = vectors.WECHAT_NOTIFY_BODY.replace("签约成功".encode(), "签约失败".encode())
    assert provider.verify_signed(vectors.WECHAT_NOTIFY_HEADERS, tampered) == PaymentsCode.BAD_SIGNATURE
    resource = json.loads(vectors.WECHAT_NOTIFY_BODY)["resource"]
    plain = crypto.aes_gcm_decrypt(
        vectors.WECHAT_NOTIFY_APIV3_KEY, resource["nonce"], resource["associated_data"], resource["ciphertext"]
    )
    assert plain.decode() == vectors.WECHAT_NOTIFY_PLAINTEXT
    with pytest.raises(crypto.DecryptError):
        crypto.aes_gcm_decrypt(
            b"testMchAPIv3Key1", resource["nonce"], resource["associated_data"], resource["ciphertext"]
        )


# --- requestPayment -------------------------------------------------------------------


def test_request_payment_params_are_signed_over_the_four_lines(wechat: WechatPayV3, merchant_pair: KeyPair) -> None:
    params = wechat.request_payment_params(
        "wx201410272009395522657a690389285100", timestamp="1414561699", nonce="5K8264ILTKCH16CQ2502SI8ZNMTM67VS"
    )
    assert set(params) == {"appId", "timeStamp", "nonceStr", "package", "signType", "paySign"}
    assert params["package"] == "prepay_id=wx201410272009395522657a690389285100" and params["signType"] == "RSA"
    message = f"{APPID}\n1414561699\n5K8264ILTKCH16CQ2502SI8ZNMTM67VS\nprepay_id=wx201410272009395522657a690389285100\n"
    assert pay_sign_message(APPID, "1414561699", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS", params["package"]) == message
    public = crypto.load_public_key(merchant_pair.public_pem)
    assert crypto.verify_sha256_rsa(public, message, params["paySign"])
    assert not crypto.verify_sha256_rsa(public, message.replace("1414561699", "1414561700"), params["paySign"])


# --- notifications ----------------------------------------------------------------------


def _notify(platform_pair: KeyPair, apiv3_key: str, clock: Clock, **kw: Any) -> tuple[dict[str, str], bytes]:
    args: dict[str, Any] = {
        "key": platform_pair.private,
        "serial": platform_pair.serial,
        "apiv3_key": apiv3_key,
        "timestamp": int(clock.now),
        "resource": transaction(),
    }
    args.update(kw)
    return wechat_notify(**args)


def test_good_notification_is_parsed_once(
    wechat: WechatPayV3, platform_pair: KeyPair, apiv3_key: str, clock: Clock
) -> None:
    headers, body = _notify(platform_pair, apiv3_key, clock)
    notice = wechat.parse_notify(headers, body)
    assert notice.status == NoticeStatus.PAID and notice.provider == "wechat"
    assert (notice.order_no, notice.amount_fen, notice.merchant_id, notice.app_id) == (
        "ORD20251201001",
        1230,
        MCHID,
        APPID,
    )
    assert notice.transaction_id == "4200000985202512011234567890" and notice.notice_id == "EV-2018022511223320873"
    assert notice.occurred_at.isoformat() == "2025-12-01T00:00:05+00:00"
    # The same request again (same nonce): a replay.
    with pytest.raises(NotifyRejected) as replay:
        wechat.parse_notify(headers, body)
    assert replay.value.code == PaymentsCode.REPLAYED_NONCE
    # WeChat's own retry is signed afresh (new nonce): accepted, idempotency is the order's job.
    again = wechat.parse_notify(*_notify(platform_pair, apiv3_key, clock))
    assert again.notice_id == notice.notice_id


def _refused(wechat: WechatPayV3, headers: dict[str, str], body: bytes) -> str:
    with pytest.raises(NotifyRejected) as exc:
        wechat.parse_notify(headers, body)
    return exc.value.code


def test_bad_signature_is_refused_and_claims_nothing(
    wechat: WechatPayV3, platform_pair: KeyPair, other_pair: KeyPair, apiv3_key: str, clock: Clock
) -> None:
    headers, body = _notify(platform_pair, apiv3_key, clock, nonce="N" * 32)
    forged = dict(
        headers,
        **{
            "Wechatpay-Signature": crypto.sign_sha256_rsa(
                other_pair.private, answer_message(headers["Wechatpay-Timestamp"], headers["Wechatpay-Nonce"], body)
            )
        },
    )
    assert _refused(wechat, forged, body) == PaymentsCode.BAD_SIGNATURE
    # A changed body under the genuine signature.
    tampered = body.replace(b'"TRANSACTION.SUCCESS"', b'"TRANSACTION.SUCCESS" ')
    assert _refused(wechat, headers, tampered) == PaymentsCode.BAD_SIGNATURE
    assert (
        _refused(wechat, {k: v for k, v in headers.items() if k != "Wechatpay-Signature"}, body)
        == PaymentsCode.BAD_SIGNATURE
    )
    assert _refused(wechat, dict(headers, **{"Wechatpay-Signature": "not base64!"}), body) == PaymentsCode.BAD_SIGNATURE
    # Nothing was recorded by the refusals: the genuine notification with that nonce still goes through.
    assert wechat.parse_notify(headers, body).amount_fen == 1230


def test_wrong_serial_is_refused(
    wechat: WechatPayV3, platform_pair: KeyPair, other_pair: KeyPair, apiv3_key: str, clock: Clock
) -> None:
    headers, body = _notify(platform_pair, apiv3_key, clock, serial=other_pair.serial)
    with pytest.raises(NotifyRejected) as exc:
        wechat.parse_notify(headers, body)
    assert exc.value.code == PaymentsCode.UNKNOWN_SERIAL and exc.value.status == 401
    assert exc.value.detail["serial"] == other_pair.serial


@pytest.mark.parametrize("skew", [-301, 301, -86400])
def test_stale_or_future_timestamp_is_refused(
    wechat: WechatPayV3, platform_pair: KeyPair, apiv3_key: str, clock: Clock, skew: int
) -> None:
    headers, body = _notify(platform_pair, apiv3_key, clock, timestamp=int(clock.now) + skew)
    assert _refused(wechat, headers, body) == PaymentsCode.STALE_TIMESTAMP


def test_timestamp_inside_the_window_is_accepted(
    wechat: WechatPayV3, platform_pair: KeyPair, apiv3_key: str, clock: Clock
) -> None:
    headers, body = _notify(platform_pair, apiv3_key, clock, timestamp=int(clock.now) - 299)
    assert wechat.parse_notify(headers, body).status == NoticeStatus.PAID


def test_tampered_ciphertext_and_wrong_apiv3_key_are_refused(
    wechat: WechatPayV3, platform_pair: KeyPair, apiv3_key: str, clock: Clock
) -> None:
    # Encrypted with another APIv3 key, correctly signed.
    headers, body = _notify(platform_pair, "k" * 32, clock)
    assert _refused(wechat, headers, body) == PaymentsCode.DECRYPT_FAILED
    # A flipped ciphertext byte, re-signed (the platform signature cannot hide AEAD tampering).
    envelope = json.loads(_notify(platform_pair, apiv3_key, clock)[1])
    raw = bytearray(base64.b64decode(envelope["resource"]["ciphertext"]))
    raw[3] ^= 0x01
    envelope["resource"]["ciphertext"] = base64.b64encode(bytes(raw)).decode()
    body = json.dumps(envelope).encode()
    nonce = "T" * 32
    signed = {
        "Wechatpay-Serial": platform_pair.serial,
        "Wechatpay-Timestamp": str(int(clock.now)),
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": crypto.sign_sha256_rsa(
            platform_pair.private, answer_message(str(int(clock.now)), nonce, body)
        ),
    }
    assert _refused(wechat, signed, body) == PaymentsCode.DECRYPT_FAILED


def test_wrong_merchant_or_app_and_unpaid_state_are_refused(
    wechat: WechatPayV3, platform_pair: KeyPair, apiv3_key: str, clock: Clock
) -> None:
    assert (
        _refused(wechat, *_notify(platform_pair, apiv3_key, clock, resource=transaction(mchid="1900000000")))
        == PaymentsCode.WRONG_MERCHANT
    )
    assert (
        _refused(wechat, *_notify(platform_pair, apiv3_key, clock, resource=transaction(appid="wx0000000000000000")))
        == PaymentsCode.WRONG_MERCHANT
    )
    assert (
        _refused(wechat, *_notify(platform_pair, apiv3_key, clock, resource=transaction(trade_state="NOTPAY")))
        == PaymentsCode.MALFORMED_NOTIFY
    )
    assert (
        _refused(wechat, *_notify(platform_pair, apiv3_key, clock, event="PAYSCORE.USER_OPEN_SERVICE"))
        == PaymentsCode.MALFORMED_NOTIFY
    )
    resource = transaction()
    del resource["amount"]
    assert (
        _refused(wechat, *_notify(platform_pair, apiv3_key, clock, resource=resource)) == PaymentsCode.MALFORMED_NOTIFY
    )


def test_malformed_envelope_is_refused(wechat: WechatPayV3, platform_pair: KeyPair, clock: Clock) -> None:
    body = b"[not json"
    nonce = "M" * 32
    headers = {
        "Wechatpay-Serial": platform_pair.serial,
        "Wechatpay-Timestamp": str(int(clock.now)),
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": crypto.sign_sha256_rsa(
            platform_pair.private, answer_message(str(int(clock.now)), nonce, body)
        ),
    }
    assert _refused(wechat, headers, body) == PaymentsCode.MALFORMED_NOTIFY


def test_refund_notification(wechat: WechatPayV3, platform_pair: KeyPair, apiv3_key: str, clock: Clock) -> None:
    refund = {
        "mchid": MCHID,
        "out_trade_no": "ORD20251201001",
        "transaction_id": "4200000985202512011234567890",
        "out_refund_no": "RF20251201001",
        "refund_id": "50000000382019052709732678859",
        "refund_status": "SUCCESS",
        "success_time": "2025-12-01T09:00:00+08:00",
        "user_received_account": "支付用户零钱",
        "amount": {"total": 1230, "refund": 230, "payer_total": 1230, "payer_refund": 230},
    }
    notice = wechat.parse_notify(*_notify(platform_pair, apiv3_key, clock, resource=refund, event="REFUND.SUCCESS"))
    assert notice.status == NoticeStatus.REFUNDED
    assert (notice.refund_no, notice.refund_amount_fen, notice.amount_fen, notice.app_id) == (
        "RF20251201001",
        230,
        1230,
        "",
    )
    failed = wechat.parse_notify(
        *_notify(
            platform_pair, apiv3_key, clock, resource=dict(refund, refund_status="ABNORMAL"), event="REFUND.ABNORMAL"
        )
    )
    assert failed.status == NoticeStatus.REFUND_FAILED


def test_notify_answers_follow_the_v3_docs(wechat: WechatPayV3) -> None:
    assert wechat.notify_ack(True) == (204, "application/json", b"")
    status, content_type, body = wechat.notify_ack(False)
    assert status == 500 and content_type == "application/json"
    assert json.loads(body) == {"code": "FAIL", "message": "失败"}


def test_apiv3_key_must_be_32_bytes(merchant_pair: KeyPair) -> None:
    with pytest.raises(ValueError):
        WechatPayV3(
            merchant_id=MCHID,
            app_id=APPID,
            merchant_serial="X",
            merchant_private_key=merchant_pair.private_pem,
            apiv3_key="short",
            platform_keys={},
        )


def test_five_concurrent_copies_of_one_notification_pass_once(
    wechat: WechatPayV3, platform_pair: KeyPair, apiv3_key: str, clock: Clock
) -> None:
    """The nonce is claimed with one atomic SET NX (Redis in tests, as in production)."""
    import threading

    headers, body = _notify(platform_pair, apiv3_key, clock)
    barrier = threading.Barrier(5)
    outcomes: list[str] = []
    lock = threading.Lock()

    def deliver() -> None:
        barrier.wait()
        try:
            wechat.parse_notify(headers, body)
            outcome = "accepted"
        except NotifyRejected as exc:
            outcome = exc.code
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=deliver) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["accepted"] + [PaymentsCode.REPLAYED_NONCE] * 4


def test_amounts_must_be_integer_fen_and_payments_must_name_our_app(
    wechat: WechatPayV3, platform_pair: KeyPair, apiv3_key: str, clock: Clock
) -> None:
    for amount in (12.3, "1230", True):
        resource = transaction(amount={"total": amount, "payer_total": 1230, "currency": "CNY"})
        assert (
            _refused(wechat, *_notify(platform_pair, apiv3_key, clock, resource=resource))
            == PaymentsCode.MALFORMED_NOTIFY
        )
    assert (
        _refused(wechat, *_notify(platform_pair, apiv3_key, clock, resource=transaction(appid="")))
        == PaymentsCode.WRONG_MERCHANT
    )
