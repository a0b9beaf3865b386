"""Races on PostgreSQL with real threads: expiry against a payment notice, two
staff approving one refund at once."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from apps.accounts.roles import Role
from apps.commerce import services
from apps.commerce.models import Order, Payment, Refund
from tests.commerce.conftest import Buyer, add_patient, balanced, checkout
from tests.conftest import make_patient, make_staff

pytestmark = pytest.mark.django_db(transaction=True)


def _together(*calls: Callable[[], Any]) -> list[Any]:
    out: list[Any] = []
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> None:
        try:
            barrier.wait()
            out.append(call())
        except Exception as exc:  # collected and asserted by the caller
            out.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return out


def _buyer(phone: str) -> Buyer:
    account = make_patient(phone, "冯十二")
    return Buyer(account=account, patient=add_patient(account, "冯十二"))


@pytest.mark.parametrize("round_", range(3))
def test_expiry_racing_a_payment_ends_paid_or_refunded_never_both(gateway: Any, shop: Any, round_: int) -> None:
    buyer = _buyer(f"1390000010{round_}")
    order = checkout(buyer, ("test_tea", "t1", 1))
    notice = gateway.pay(order.order_no)
    due = order.expires_at + dt.timedelta(seconds=1)
    results = _together(lambda: services.order_expire(order.pk, now=due), lambda: services.payment_notice_apply(notice))
    assert not any(isinstance(r, Exception) for r in results), results
    order.refresh_from_db()
    assert Payment.objects.filter(order=order, status="succeeded").count() == 1
    if order.status == Order.Status.COMPLETED:  # the notice won: a normal sale
        assert order.cancel_reason == "" and not Refund.objects.filter(order=order).exists()
        assert len(shop.paid) == 1
    else:  # the expiry won: the payment is returned in full, nothing fulfilled
        assert order.status == Order.Status.REFUND_REQUESTED and order.cancel_reason == "expired"
        assert Refund.objects.get(order=order).amount_fen == order.paid_fen and shop.paid == []
    balanced(order)


def test_two_staff_approving_one_refund_send_it_once(gateway: Any, shop: Any) -> None:
    buyer = _buyer("13900000110")
    order = checkout(buyer, ("test_tea", "t1", 1))
    services.payment_notice_apply(gateway.pay(order.order_no))
    refund = services.refund_request(user=buyer.account.user, order_no=order.order_no, reason="不想要了")
    a, b = make_staff(Role.CS_AGENT, "cs_a"), make_staff(Role.CS_AGENT, "cs_b")
    results = _together(
        lambda: services.refund_approve(staff=a.user, refund_no=refund.refund_no),
        lambda: services.refund_approve(staff=b.user, refund_no=refund.refund_no),
    )
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(refused) == 1 and getattr(refused[0], "code", "") == "commerce.transition_refused"
    assert list(gateway.refunds) == [refund.refund_no]
    assert Refund.objects.get(pk=refund.pk).status == Refund.Status.PROCESSING
    balanced(order)
