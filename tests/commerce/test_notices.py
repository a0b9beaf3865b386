"""Payment notices: compared with the order, exactly once under concurrency,
late payments refunded automatically; fulfilment handlers run once."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.commerce import services
from apps.commerce.errors import CommerceCode
from apps.commerce.models import Fulfilment, LedgerEntry, Order, Payment, Refund
from apps.core.models import TransitionEvent
from hub.errors import ApiError
from tests.commerce.conftest import Buyer, add_patient, balanced, checkout
from tests.conftest import make_patient


def test_a_paid_notice_records_once_and_fulfils(
    buyer: Buyer, gateway: Any, shop: Any, django_capture_on_commit_callbacks: Any
) -> None:
    order = checkout(buyer, ("test_consult", "c1", 1), ("test_tea", "t1", 1))
    notice = gateway.pay(order.order_no)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.payment_notice_apply(notice).result == "recorded"
    with django_capture_on_commit_callbacks(execute=True):
        again = dataclasses.replace(notice, notice_id="n_again")
        assert services.payment_notice_apply(again).result == "duplicate"
    order.refresh_from_db()
    assert order.status == Order.Status.COMPLETED
    assert order.paid_fen == order.payable_fen == 8800
    payment = Payment.objects.get(order=order)
    assert payment.status == Payment.Status.SUCCEEDED and payment.transaction_id == notice.transaction_id
    b = balanced(order)
    assert b["charge"] == 8800 and b["payment"] == -8800
    assert LedgerEntry.objects.filter(order=order, kind="payment").count() == 1
    assert sorted(e.kind for e in shop.paid) == ["test_consult", "test_tea"]
    assert Fulfilment.objects.filter(item__order=order, status="done").count() == 2
    assert [e.to_status for e in TransitionEvent.objects.filter(object_id=str(order.pk)).order_by("pk")] == [
        "paid",
        "completed",
    ]
    assert AuditEvent.objects.filter(action="commerce.paid", object_id=order.order_no).count() == 1


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"amount_fen": 1}, "amount_mismatch"),
        ({"merchant_id": "1900000999"}, "merchant_mismatch"),
        ({"app_id": "wxother"}, "merchant_mismatch"),
        ({"provider": "other"}, "provider_mismatch"),
        ({"order_no": "CO_unknown_0001"}, "unknown_order"),
    ],
)
def test_a_notice_that_does_not_match_the_order_is_refused_with_nothing_recorded(
    buyer: Buyer, gateway: Any, shop: Any, django_capture_on_commit_callbacks: Any, change: dict[str, Any], reason: str
) -> None:
    order = checkout(buyer, ("test_tea", "t1", 1))
    notice = dataclasses.replace(gateway.pay(order.order_no), **change)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ApiError) as exc:
        services.payment_notice_apply(notice)
    assert exc.value.code == CommerceCode.NOTICE_REFUSED and exc.value.detail["reason"] == reason
    order.refresh_from_db()
    assert order.status == Order.Status.CREATED and order.paid_fen == 0
    assert not LedgerEntry.objects.exists()
    assert not Payment.objects.filter(status=Payment.Status.SUCCEEDED).exists()
    assert not Fulfilment.objects.exists() and shop.paid == []
    assert not AuditEvent.objects.filter(action="commerce.paid").exists()


@pytest.mark.django_db(transaction=True)
def test_five_concurrent_duplicate_notices_make_one_payment_one_charge_one_fulfilment(gateway: Any, shop: Any) -> None:
    account = make_patient("13900000034", "赵六")
    buyer = Buyer(account=account, patient=add_patient(account, "赵六"))
    order = checkout(buyer, ("test_tea", "t1", 1))
    notice = gateway.pay(order.order_no)
    outcomes: list[Any] = []
    barrier = threading.Barrier(5)

    def deliver(i: int) -> None:
        try:
            barrier.wait()
            outcomes.append(services.payment_notice_apply(dataclasses.replace(notice, notice_id=f"n{i}")).result)
        except Exception as exc:  # collected and asserted below
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["duplicate"] * 4 + ["recorded"], outcomes
    assert Payment.objects.filter(status=Payment.Status.SUCCEEDED).count() == 1
    assert LedgerEntry.objects.filter(order=order, kind="payment").count() == 1
    assert LedgerEntry.objects.filter(order=order, kind="charge").count() == 1
    assert Fulfilment.objects.filter(item__order=order).count() == 1
    assert len(shop.paid) == 1
    balanced(order)
    assert Order.objects.get(pk=order.pk).status == Order.Status.COMPLETED


def test_a_late_payment_for_an_expired_order_is_refunded_in_full(
    buyer: Buyer, gateway: Any, shop: Any, django_capture_on_commit_callbacks: Any
) -> None:
    order = checkout(buyer, ("test_tea", "t1", 2))
    later = timezone.now() + dt.timedelta(minutes=16)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.orders_expire_due(now=later) == {"expired": 1}
    order.refresh_from_db()
    assert order.status == Order.Status.CANCELLED and order.cancel_reason == "expired"
    assert gateway.closed == [order.order_no]
    notice = gateway.pay(order.order_no)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.payment_notice_apply(notice).result == "late_refund"
    order.refresh_from_db()
    assert order.status == Order.Status.REFUND_REQUESTED and order.paid_fen == 7600
    refund = Refund.objects.get(order=order)
    assert refund.source == Refund.Source.LATE_PAYMENT and refund.status == Refund.Status.PROCESSING
    assert gateway.refunds[refund.refund_no]["amount"] == 7600  # asked after commit
    assert shop.paid == []  # a cancelled order is never fulfilled
    balanced(order)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.payment_notice_apply(gateway.refund_notice(refund.refund_no)).result == "recorded"
        assert services.payment_notice_apply(gateway.refund_notice(refund.refund_no)).result == "duplicate"
    order.refresh_from_db()
    refund.refresh_from_db()
    assert order.status == Order.Status.REFUNDED and order.refunded_fen == 7600
    assert refund.status == Refund.Status.SUCCEEDED
    b = balanced(order)
    assert b["refund"] == 7600 and b["reversal"] == -7600 and b["received"] == 0
    assert Payment.objects.get(order=order).late is True


def test_a_slow_item_keeps_the_order_fulfilling_until_delivered(
    buyer: Buyer, gateway: Any, shop: Any, django_capture_on_commit_callbacks: Any
) -> None:
    order = checkout(buyer, ("test_slow", "s1", 1))
    with django_capture_on_commit_callbacks(execute=True):
        services.payment_notice_apply(gateway.pay(order.order_no))
    order.refresh_from_db()
    assert order.status == Order.Status.FULFILLING
    item = order.items.get()
    services.order_item_delivered(item_id=item.pk)
    order.refresh_from_db()
    assert order.status == Order.Status.COMPLETED


def test_a_failing_handler_is_retried_and_fulfils_once(
    buyer: Buyer, gateway: Any, shop: Any, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    order = checkout(buyer, ("test_tea", "t1", 1))
    shop.fail_paid = True
    with django_capture_on_commit_callbacks(execute=True):
        services.payment_notice_apply(gateway.pay(order.order_no))
    order.refresh_from_db()
    assert order.status == Order.Status.PAID and shop.paid == []
    assert Fulfilment.objects.get(item__order=order).status == Fulfilment.Status.FAILED
    shop.fail_paid = False
    settings.COMMERCE_FULFIL_MAX_ATTEMPTS = 1  # the sweep gives up after that many attempts
    assert services.fulfilments_retry() == {"done": 0, "failed": 0} and shop.paid == []
    settings.COMMERCE_FULFIL_MAX_ATTEMPTS = 12
    assert services.fulfilments_retry() == {"done": 1, "failed": 0}
    assert services.fulfilments_retry() == {"done": 0, "failed": 0}
    assert len(shop.paid) == 1
    order.refresh_from_db()
    assert order.status == Order.Status.COMPLETED


def test_an_item_of_a_kind_nobody_registered_is_not_marked_delivered(
    buyer: Buyer, gateway: Any, shop: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from apps.commerce import registry

    order = checkout(buyer, ("test_tea", "t1", 1))
    kept = registry.item_kind("test_tea")
    registry.unregister_item_kind("test_tea")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            services.payment_notice_apply(gateway.pay(order.order_no))
        f = Fulfilment.objects.get(item__order=order)
        assert f.status == Fulfilment.Status.FAILED and f.last_error == "kind_unregistered"
        assert Order.objects.get(pk=order.pk).status == Order.Status.PAID
    finally:
        assert kept is not None
        registry.register_item_kind(
            kept.kind,
            title=kept.title,
            quote=kept.quote,
            can_checkout=kept.can_checkout,
            on_paid=kept.on_paid,
            on_refunded=kept.on_refunded,
        )
    assert services.fulfilments_retry() == {"done": 1, "failed": 0}
    assert Order.objects.get(pk=order.pk).status == Order.Status.COMPLETED and len(shop.paid) == 1
