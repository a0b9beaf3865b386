"""The HTTP API: checkout, my orders, detail, cancel, refunds, staff search and
approval, object authorisation, and the notify endpoints."""

from __future__ import annotations

import secrets
from typing import Any

from django.test import Client

from apps.accounts.roles import Role
from apps.audit.models import AuditEvent
from apps.commerce.models import LedgerEntry, Order, Payment, Refund
from tests.commerce.conftest import Buyer, add_patient, balanced
from tests.conftest import make_patient, make_staff


def _checkout(api: Any, buyer: Buyer, key: str | None = None, **extra: Any) -> Any:
    return api.post(
        "/commerce/orders",
        {
            "patient_id": buyer.patient.pk,
            "items": [{"kind": "test_consult", "ref": "c1"}, {"kind": "test_tea", "ref": "t1", "quantity": 2}],
            "client_key": key or secrets.token_hex(8),
            **extra,
        },
    )


def _notify(gateway: Any, notice: Any, path: str = "/api/v1/commerce/notify/fake", sign: bool = True) -> Any:
    body = gateway.body(notice)
    return Client().post(
        path, body, content_type="application/json", HTTP_X_FAKE_SIGNATURE=gateway.sign(body) if sign else "bad"
    )


def test_checkout_pay_and_see_the_order(
    buyer: Buyer, gateway: Any, shop: Any, django_capture_on_commit_callbacks: Any
) -> None:
    api = buyer.account.api()
    r = _checkout(api, buyer, key="key-api-0001")
    assert r.status_code == 201, r.content
    out = r.json()
    assert out["status"] == "created" and out["payable"] == {"fen": 12600, "yuan": "¥126.00"}
    assert out["allowed_actions"] == ["pay", "cancel"]
    assert out["pay_params"]["prepay_ref"]
    again = _checkout(api, buyer, key="key-api-0001")
    assert again.status_code == 201 and again.json()["order_no"] == out["order_no"]
    order_no = out["order_no"]

    with django_capture_on_commit_callbacks(execute=True):
        r = _notify(gateway, gateway.pay(order_no))
    assert r.status_code == 200 and r.json() == {"code": "SUCCESS"}
    detail = api.get(f"/commerce/orders/{order_no}").json()
    assert detail["status"] == "completed" and detail["allowed_actions"] == ["refund_request"]
    assert detail["paid"]["yuan"] == "¥126.00" and detail["pay_params"] == {}
    assert detail["ledger"]["balance"]["fen"] == 0 and detail["ledger"]["received"]["fen"] == 12600
    assert [p["status"] for p in detail["payments"]] == ["succeeded"]
    listing = api.get("/commerce/orders").json()
    assert listing["count"] == 1 and listing["items"][0]["order_no"] == order_no


def test_a_badly_signed_notice_is_refused_and_nothing_recorded(buyer: Buyer, gateway: Any, shop: Any) -> None:
    api = buyer.account.api()
    order_no = _checkout(api, buyer).json()["order_no"]
    r = _notify(gateway, gateway.pay(order_no), sign=False)
    assert r.status_code == 500 and r.json()["code"] == "FAIL"
    assert not LedgerEntry.objects.exists()
    assert not Payment.objects.filter(status="succeeded").exists()
    assert Order.objects.get(order_no=order_no).status == "created"
    refused = AuditEvent.objects.get(action="commerce.notice_refused")
    assert refused.result == "denied" and refused.detail["code"] == "payments.bad_signature"
    # A refund notice posted to the payment endpoint is refused too.
    r = _notify(gateway, gateway.pay(order_no), path="/api/v1/commerce/notify/fake/refund")
    assert r.status_code == 500 and not LedgerEntry.objects.exists()


def test_another_patient_gets_the_same_404(buyer: Buyer, gateway: Any, shop: Any) -> None:
    order_no = _checkout(buyer.account.api(), buyer).json()["order_no"]
    other = make_patient("13900000035", "钱七")
    add_patient(other, "钱七")
    api = other.api()
    for r in (
        api.get(f"/commerce/orders/{order_no}"),
        api.post(f"/commerce/orders/{order_no}/cancel"),
        api.post(f"/commerce/orders/{order_no}/refunds", {"reason": "想退"}),
        api.get("/commerce/orders/CO_no_such_order"),
    ):
        assert r.status_code == 404 and r.json()["code"] == "not_found"
    assert api.get("/commerce/orders").json()["count"] == 0
    assert Order.objects.get(order_no=order_no).status == "created"
    # A doctor is not commerce staff.
    doctor = make_staff(Role.DOCTOR, "doc9").api()
    assert doctor.get(f"/commerce/orders/{order_no}").status_code == 404
    assert doctor.get("/commerce/staff/orders").status_code == 403


def test_refund_through_the_api_with_staff_approval(
    buyer: Buyer, gateway: Any, shop: Any, django_capture_on_commit_callbacks: Any
) -> None:
    api = buyer.account.api()
    order_no = _checkout(api, buyer).json()["order_no"]
    with django_capture_on_commit_callbacks(execute=True):
        _notify(gateway, gateway.pay(order_no))
    order = Order.objects.get(order_no=order_no)
    tea = order.items.get(kind="test_tea")
    r = api.post(f"/commerce/orders/{order_no}/refunds", {"reason": "茶包破损", "items": [{"item_id": tea.pk}]})
    assert r.status_code == 201, r.content
    refund = r.json()
    assert refund["amount"]["fen"] == 7600 and refund["status"] == "requested" and refund["allowed_actions"] == []
    agent = make_staff(Role.CS_AGENT, "cs9").api()
    found = agent.get("/commerce/staff/orders", q=order_no).json()
    assert found["count"] == 1
    seen = agent.get(f"/commerce/orders/{order_no}").json()
    assert seen["order_no"] == order_no and seen["pay_params"] == {} and seen["allowed_actions"] == []
    assert AuditEvent.objects.filter(action="commerce.order_view", object_id=order_no, result="ok").count() == 1
    waiting = agent.get("/commerce/staff/refunds").json()
    assert [x["refund_no"] for x in waiting["items"]] == [refund["refund_no"]]
    assert waiting["items"][0]["allowed_actions"] == ["approve", "reject"]
    assert agent.get("/todos/").json()["items"][0]["kind"] == "commerce.refunds_to_approve"
    with django_capture_on_commit_callbacks(execute=True):
        r = agent.post(f"/commerce/refunds/{refund['refund_no']}/approve")
    assert r.status_code == 200 and r.json()["status"] == "processing"
    with django_capture_on_commit_callbacks(execute=True):
        r = _notify(gateway, gateway.refund_notice(refund["refund_no"]), path="/api/v1/commerce/notify/fake/refund")
    assert r.status_code == 200
    detail = api.get(f"/commerce/orders/{order_no}").json()
    assert detail["status"] == "partially_refunded" and detail["refunded"]["fen"] == 7600
    balanced(order)
    # The patient cannot approve; a second approval of a finished refund is refused.
    assert api.post(f"/commerce/refunds/{refund['refund_no']}/approve").status_code == 403
    assert agent.post(f"/commerce/refunds/{refund['refund_no']}/approve").status_code == 409


def test_bad_checkout_input_is_refused_with_nothing_written(buyer: Buyer, gateway: Any, shop: Any) -> None:
    api = buyer.account.api()
    r = _checkout(api, buyer, key="short")
    assert r.status_code == 422 and r.json()["code"] == "validation_error"
    r = _checkout(api, buyer, channel="cash")
    assert r.status_code == 422 and r.json()["code"] == "commerce.channel_unavailable"
    r = api.post(
        "/commerce/orders",
        {
            "patient_id": buyer.patient.pk,
            "items": [{"kind": "test_tea", "ref": "t1", "quantity": 0}],
            "client_key": "k" * 12,
        },
    )
    assert r.status_code == 422
    r = api.post("/commerce/orders", {"patient_id": buyer.patient.pk, "items": [], "client_key": "k" * 12})
    assert r.status_code == 422
    assert not Order.objects.exists() and gateway.prepays == []
    staff = make_staff(Role.CS_AGENT, "cs8").api()
    assert _checkout(staff, buyer).status_code == 403


def test_the_patient_cancels_through_the_api(
    buyer: Buyer, gateway: Any, shop: Any, django_capture_on_commit_callbacks: Any
) -> None:
    api = buyer.account.api()
    order_no = _checkout(api, buyer).json()["order_no"]
    with django_capture_on_commit_callbacks(execute=True):
        r = api.post(f"/commerce/orders/{order_no}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled" and r.json()["allowed_actions"] == []
    assert gateway.closed == [order_no]
    r = api.post(f"/commerce/orders/{order_no}/pay")
    assert r.status_code == 409 and r.json()["code"] == "commerce.transition_refused"
    r = api.post(f"/commerce/orders/{order_no}/cancel")
    assert r.status_code == 409 and r.json()["code"] == "commerce.transition_refused"
    r = api.post(f"/commerce/orders/{order_no}/refunds", {"reason": "想退款"})
    assert r.status_code == 409 and not Refund.objects.exists()


def test_pay_params_again_after_a_failed_prepay(buyer: Buyer, gateway: Any, shop: Any) -> None:
    api = buyer.account.api()
    gateway.fail_next.add("prepay")
    r = _checkout(api, buyer, key="key-api-0002")
    assert r.status_code == 503 and r.json()["code"] == "payments.gateway_unavailable"
    order = Order.objects.get()
    r = api.post(f"/commerce/orders/{order.order_no}/pay")
    assert r.status_code == 200 and r.json()["pay_params"]["prepay_ref"]
    assert api.post(f"/commerce/orders/{order.order_no}/pay").json()["pay_params"] == r.json()["pay_params"]
    assert gateway.prepays == [order.order_no]
    other = make_patient("13900000039", "郑十一")
    assert other.api().post(f"/commerce/orders/{order.order_no}/pay").status_code == 404
