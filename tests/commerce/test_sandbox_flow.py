"""End to end with P's sandbox gateway over real HTTP (the live server): the real
WeChat Pay v3 adapter prepays, the pay sheet pays (paySign checked), the
gateway posts signed, encrypted callbacks to our notify endpoint — repeated —
and a refund's notice settles it. One payment, one fulfilment, a balanced ledger."""

from __future__ import annotations

import json
import secrets
import threading
import urllib.error
import urllib.request
from typing import Any

import pytest
from django.core.cache import cache

from apps.accounts.roles import Role
from apps.commerce import services
from apps.commerce.models import Fulfilment, LedgerEntry, Order, Payment, Refund
from apps.commerce.payments.base import reset_providers
from tests.commerce.conftest import Buyer, add_patient, balanced
from tests.conftest import make_patient, make_staff

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sandbox(settings: Any, tmp_path: Any, live_server: Any) -> Any:
    cache.clear()
    settings.PAYMENTS_SANDBOX_DIR = tmp_path / "sandbox"
    settings.PAYMENTS_SANDBOX_DELIVERY = "inline"
    settings.PAYMENTS_PUBLIC_BASE_URL = live_server.url
    settings.COMMERCE_DEFAULT_PROVIDER = "sandbox"
    settings.PAYMENT_PROVIDERS = {
        "sandbox": {
            "class": "apps.commerce.payments.sandbox.SandboxWechatPay",
            "base_url": f"{live_server.url}/sandbox/pay",
            "refund_notify_url": f"{live_server.url}/api/v1/commerce/notify/sandbox/refund",
            "timeout": 10.0,
        }
    }
    reset_providers()
    yield live_server
    reset_providers()


def _http(url: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=20) as answer:
        return json.loads(answer.read())


def test_pay_through_the_sandbox_with_repeated_callbacks_then_refund(sandbox: Any, shop: Any) -> None:
    account = make_patient("13900000036", "孙八")
    buyer = Buyer(account=account, patient=add_patient(account, "孙八"))
    order = services.order_checkout(
        payer=account.user,
        patient_id=buyer.patient.pk,
        lines=[services.CheckoutLine("test_tea", "t1", 2)],
        client_key=secrets.token_hex(8),
        channel="sandbox",
    )
    params = order.pay_params
    assert params["package"].startswith("prepay_id=") and params["signType"] == "RSA"
    sheet = f"{sandbox.url}/sandbox/pay/trades/{params['sandboxTrade']}"
    assert _http(f"{sheet}/controls", {"repeat": 3})["controls"]
    assert _http(f"{sheet}/pay", params)["state"] == "SUCCESS"
    callbacks = _http(f"{sheet}/callbacks")["callbacks"]
    assert callbacks and all(c["status"] == "delivered" for c in callbacks)
    order.refresh_from_db()
    assert order.status == Order.Status.COMPLETED and order.paid_fen == 7600
    assert Payment.objects.filter(order=order, status="succeeded").count() == 1
    assert LedgerEntry.objects.filter(order=order, kind="payment").count() == 1
    assert Fulfilment.objects.filter(item__order=order).count() == 1 and len(shop.paid) == 1
    balanced(order)

    refund = services.refund_request(user=account.user, order_no=order.order_no, reason="不需要了")
    agent = make_staff(Role.CS_AGENT, "cs1")
    services.refund_approve(staff=agent.user, refund_no=refund.refund_no)  # the provider is called after commit
    refund.refresh_from_db()
    assert refund.status == Refund.Status.PROCESSING and refund.provider_refund_id  # waiting for the notice
    assert Order.objects.get(pk=order.pk).refunded_fen == 0
    _http(f"{sandbox.url}/sandbox/pay/callbacks/flush", {})  # the gateway sends the refund notice now
    refund.refresh_from_db()
    assert refund.status == Refund.Status.SUCCEEDED, refund.status
    order.refresh_from_db()
    assert order.status == Order.Status.REFUNDED
    assert balanced(order)["received"] == 0
    assert len(shop.refunded) == 1


def test_a_channel_the_sandbox_does_not_serve_is_refused_before_anything_is_written(sandbox: Any, shop: Any) -> None:
    account = make_patient("13900000038", "吴十")
    patient = add_patient(account, "吴十")
    r = account.api().post(
        "/commerce/orders",
        {
            "patient_id": patient.pk,
            "items": [{"kind": "test_tea", "ref": "t1"}],
            "client_key": secrets.token_hex(8),
            "channel": "alipay_mini",
        },
    )
    assert r.status_code == 422 and r.json()["code"] == "commerce.channel_unavailable"
    assert not Order.objects.exists()


def _post(url: str, headers: dict[str, str], body: bytes) -> int:
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=20) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_five_concurrent_signed_notifications_over_http_record_one_payment(sandbox: Any, shop: Any) -> None:
    from apps.commerce.payments.sandbox import gateway

    account = make_patient("13900000040", "陈十三")
    patient = add_patient(account, "陈十三")
    order = services.order_checkout(
        payer=account.user,
        patient_id=patient.pk,
        lines=[services.CheckoutLine("test_tea", "t1", 1)],
        client_key=secrets.token_hex(8),
    )
    sheet = f"{sandbox.url}/sandbox/pay/trades/{order.pay_params['sandboxTrade']}"
    _http(f"{sheet}/controls", {"fail_callbacks": 10})  # paid, but its own callbacks are dropped
    assert _http(f"{sheet}/pay", order.pay_params)["state"] == "SUCCESS"
    notify = f"{sandbox.url}/api/v1/commerce/notify/sandbox"

    # Refused with nothing recorded: a wrong amount, a bad signature.
    for bad in ({"wrong_amount": True}, {"bad_signature": True}):
        headers, body = gateway().notification_for(order.order_no, **bad)
        assert _post(notify, headers, body) >= 400
    assert not Payment.objects.filter(status="succeeded").exists() and not LedgerEntry.objects.exists()

    copies = [gateway().notification_for(order.order_no) for _ in range(5)]
    statuses: list[Any] = []
    barrier = threading.Barrier(5)

    def send(headers: dict[str, str], body: bytes) -> None:
        barrier.wait()
        statuses.append(_post(notify, headers, body))

    threads = [threading.Thread(target=send, args=c) for c in copies]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(statuses) == 5 and all(200 <= s < 300 for s in statuses), statuses
    assert Payment.objects.filter(order=order, status="succeeded").count() == 1
    assert LedgerEntry.objects.filter(order=order, kind="payment").count() == 1
    assert Fulfilment.objects.filter(item__order=order).count() == 1 and len(shop.paid) == 1
    # The same bytes again: the nonce was used, refused, still one payment.
    assert _post(notify, *copies[0]) >= 400
    assert Payment.objects.filter(order=order, status="succeeded").count() == 1
    order.refresh_from_db()
    assert order.status == Order.Status.COMPLETED
    balanced(order)
