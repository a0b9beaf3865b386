"""Keys generated per test session, a WeChat-style notification signer, and the sandbox
gateway served by the live server with a merchant notify endpoint on loopback."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.core.cache import cache

from apps.commerce.payments import crypto
from apps.commerce.payments.base import NotifyRejected, PaymentNotice, get_provider, reset_providers
from apps.commerce.payments.wechat import WechatPayV3, answer_message

MCHID = "1900009191"
APPID = "wxd678efh567hg6787"


@dataclass(frozen=True)
class KeyPair:
    private: crypto.PrivateKey
    private_pem: str
    public_pem: str
    certificate: str
    serial: str


def make_pair(name: str) -> KeyPair:
    key = crypto.new_private_key()
    cert, serial = crypto.self_signed_certificate(key, name)
    return KeyPair(key, crypto.private_pem(key), crypto.public_pem(key.public_key()), cert, serial)


@pytest.fixture(scope="session")
def merchant_pair() -> KeyPair:
    return make_pair("test merchant")


@pytest.fixture(scope="session")
def platform_pair() -> KeyPair:
    return make_pair("test platform")


@pytest.fixture(scope="session")
def other_pair() -> KeyPair:
    return make_pair("somebody else")


@pytest.fixture
def apiv3_key() -> str:
    return secrets.token_hex(16)  # 32 ASCII characters, as the merchant platform sets it


@pytest.fixture(autouse=True)
def _clean_state() -> Iterator[None]:
    cache.clear()
    reset_providers()
    yield
    reset_providers()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(1_764_547_200.0)  # 2025-12-01 00:00 UTC


@pytest.fixture
def wechat(merchant_pair: KeyPair, platform_pair: KeyPair, apiv3_key: str, clock: Clock) -> WechatPayV3:
    return WechatPayV3(
        name="wechat",
        merchant_id=MCHID,
        app_id=APPID,
        merchant_serial=merchant_pair.serial,
        merchant_private_key=merchant_pair.private_pem,
        apiv3_key=apiv3_key,
        platform_keys={platform_pair.serial: platform_pair.certificate},
        clock=clock,
    )


def wechat_notify(
    *,
    key: crypto.PrivateKey,
    serial: str,
    apiv3_key: str,
    timestamp: int,
    resource: dict[str, Any],
    event: str = "TRANSACTION.SUCCESS",
    nonce: str | None = None,
    notice_id: str = "EV-2018022511223320873",
) -> tuple[dict[str, str], bytes]:
    """A notification as WeChat Pay posts it (the test plays the platform)."""
    original = "transaction" if event.startswith("TRANSACTION") else "refund"
    aead_nonce = secrets.token_hex(6)
    plaintext = json.dumps(resource, ensure_ascii=False).encode()
    body = json.dumps(
        {
            "id": notice_id,
            "create_time": "2025-12-01T08:00:00+08:00",
            "resource_type": "encrypt-resource",
            "event_type": event,
            "summary": "支付成功",
            "resource": {
                "original_type": original,
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": crypto.aes_gcm_encrypt(apiv3_key.encode(), aead_nonce, original, plaintext),
                "associated_data": original,
                "nonce": aead_nonce,
            },
        },
        ensure_ascii=False,
    ).encode()
    nonce = nonce or secrets.token_hex(16)
    headers = {
        "Wechatpay-Serial": serial,
        "Wechatpay-Timestamp": str(timestamp),
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": crypto.sign_sha256_rsa(key, answer_message(str(timestamp), nonce, body)),
        "Content-Type": "application/json",
    }
    return headers, body


def transaction(order_no: str = "ORD20251201001", total: int = 1230, **over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "appid": APPID,
        "mchid": MCHID,
        "out_trade_no": order_no,
        "transaction_id": "4200000985202512011234567890",
        "trade_type": "JSAPI",
        "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功",
        "bank_type": "CMC",
        "attach": "",
        "success_time": "2025-12-01T08:00:05+08:00",
        "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        "amount": {"total": total, "payer_total": total, "currency": "CNY", "payer_currency": "CNY"},
    }
    data.update(over)
    return data


# --- the sandbox over the live server --------------------------------------------------


@dataclass
class Receiver:
    """The merchant's notify endpoint on loopback: what commerce's route does with the
    provider (parse_notify, then notify_ack), recording each outcome."""

    provider: str
    url: str = ""
    notices: list[PaymentNotice] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _serve(receiver: Receiver) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            provider = get_provider(receiver.provider)
            try:
                notice = provider.parse_notify(dict(self.headers.items()), body)
                ok = True
            except NotifyRejected as exc:
                notice, ok = None, False
                with receiver.lock:
                    receiver.refused.append(exc.code)
            status, content_type, answer = provider.notify_ack(ok)
            with receiver.lock:
                if notice is not None:
                    receiver.notices.append(notice)
                receiver.answers.append(status)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/notify"
    return server


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver(provider="sandbox")
    server = _serve(found)
    yield found
    server.shutdown()
    server.server_close()


@pytest.fixture
def sandbox(settings: Any, tmp_path: Any, live_server: Any, receiver: Receiver) -> Any:
    """The sandbox gateway served over real HTTP by the live server; the "sandbox" provider
    (the real WechatPayV3 code on the sandbox keys) pointed at it; callbacks inline."""
    settings.ROOT_URLCONF = "tests.commerce.payments.urls"
    settings.PAYMENTS_SANDBOX_DIR = tmp_path / "sandbox"
    settings.PAYMENTS_SANDBOX_DELIVERY = "inline"
    settings.PAYMENTS_SANDBOX_TIMEOUT_SLEEP = 2.0
    settings.PAYMENT_PROVIDERS = {
        "sandbox": {
            "class": "apps.commerce.payments.sandbox.SandboxWechatPay",
            "base_url": f"{live_server.url}/sandbox/pay",
            "refund_notify_url": f"{receiver.url}/refund",
            "timeout": 5.0,
        }
    }
    return live_server
