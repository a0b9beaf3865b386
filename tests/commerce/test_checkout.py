"""Checkout: server-side prices, refusals by the owning app, idempotency by client key."""

from __future__ import annotations

import secrets
import threading
from typing import Any

import pytest
from django.db import connection

from apps.audit.models import AuditEvent
from apps.commerce import services
from apps.commerce.errors import CommerceCode
from apps.commerce.models import LedgerEntry, Order, OrderItem, Payment
from hub.errors import ApiError
from tests.commerce.conftest import Buyer, add_patient, balanced, checkout
from tests.conftest import make_patient


def test_checkout_prices_on_the_server_and_prepays_once(buyer: Buyer, gateway: Any, shop: Any) -> None:
    order = checkout(buyer, ("test_consult", "c1", 1), ("test_tea", "t1", 2))
    assert order.status == Order.Status.CREATED
    assert order.total_fen == 5000 + 2 * 3800 == order.payable_fen
    assert order.pay_params == {"prepay_ref": gateway.trades[order.order_no]["ref"]}
    assert gateway.prepays == [order.order_no]
    assert Payment.objects.get(order=order).status == Payment.Status.PENDING
    assert AuditEvent.objects.filter(action="commerce.checkout", object_id=order.order_no).count() == 1
    # Nothing is charged before a payment notice.
    assert not LedgerEntry.objects.filter(order=order).exists()
    assert balanced(order)["charge"] == 0


def test_an_unapproved_prescription_cannot_be_checked_out(buyer: Buyer, gateway: Any, shop: Any) -> None:
    with pytest.raises(ApiError) as exc:
        checkout(buyer, ("test_rx", "rx1", 1))
    assert exc.value.code == CommerceCode.ITEM_REFUSED
    assert exc.value.message == "处方尚未通过药师审核"
    assert not Order.objects.exists() and gateway.prepays == []
    shop.approved_rx.add("rx1")
    assert checkout(buyer, ("test_rx", "rx1", 1)).payable_fen == 1250


def test_unknown_kind_and_foreign_patient_are_refused(buyer: Buyer, gateway: Any, shop: Any) -> None:
    with pytest.raises(ApiError) as exc:
        checkout(buyer, ("nope", "x", 1))
    assert exc.value.code == CommerceCode.ITEM_KIND_UNKNOWN
    stranger = make_patient("13900000032", "李四")
    theirs = add_patient(stranger, "李四")
    with pytest.raises(ApiError) as exc:
        services.order_checkout(
            payer=buyer.account.user,
            patient_id=theirs.pk,
            lines=[services.CheckoutLine("test_tea", "t1", 1)],
            client_key="k" * 16,
        )
    assert exc.value.code == "not_found"
    assert not Order.objects.exists() and gateway.prepays == []


def test_same_key_same_order_different_content_refused(buyer: Buyer, gateway: Any, shop: Any) -> None:
    a = checkout(buyer, ("test_tea", "t1", 1), key="key-000000001")
    b = checkout(buyer, ("test_tea", "t1", 1), key="key-000000001")
    assert a.pk == b.pk and a.pay_params == b.pay_params
    with pytest.raises(ApiError) as exc:
        checkout(buyer, ("test_tea", "t1", 2), key="key-000000001")
    assert exc.value.code == CommerceCode.CLIENT_KEY_REUSED
    assert Order.objects.count() == 1 and gateway.prepays == [a.order_no]


@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_checkouts_make_one_order_and_one_prepay(gateway: Any, shop: Any) -> None:
    account = make_patient("13900000033", "王五")
    patient = add_patient(account, "王五")
    key = secrets.token_hex(8)
    results: list[Any] = []
    barrier = threading.Barrier(6)

    def go() -> None:
        try:
            barrier.wait()
            o = services.order_checkout(
                payer=account.user,
                patient_id=patient.pk,
                lines=[services.CheckoutLine("test_tea", "t1", 1)],
                client_key=key,
            )
            results.append(o.order_no)
        except Exception as exc:  # collected and asserted below
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=go) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 6 and all(isinstance(r, str) for r in results), results
    assert len(set(results)) == 1
    assert Order.objects.count() == 1 and OrderItem.objects.count() == 1
    assert gateway.prepays == results[:1]
    assert Payment.objects.count() == 1


def test_a_failed_prepay_is_retried_with_the_same_key(buyer: Buyer, gateway: Any, shop: Any) -> None:
    gateway.fail_next.add("prepay")
    with pytest.raises(ApiError) as exc:
        checkout(buyer, ("test_tea", "t1", 1), key="key-retry-0001")
    assert exc.value.code == "payments.gateway_unavailable" and exc.value.status == 503
    order = Order.objects.get()
    assert order.pay_params == {} and not Payment.objects.exists()
    again = checkout(buyer, ("test_tea", "t1", 1), key="key-retry-0001")
    assert again.pk == order.pk and again.pay_params and gateway.prepays == [order.order_no]
    assert Payment.objects.get().status == Payment.Status.PENDING
