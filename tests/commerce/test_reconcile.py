"""Reconciliation: pending payments queried after 10 minutes; the daily bill
compared with our payments and refunds, every difference listed."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from apps.accounts.roles import Role
from apps.commerce import services
from apps.commerce.models import Order, Payment, ReconciliationLine
from apps.commerce.payments.base import BillLine
from apps.commerce.reconcile import SH, bill_reconcile, pending_payments_settle, refunds_resubmit
from tests.commerce.conftest import Buyer, balanced, checkout
from tests.conftest import make_staff


def test_a_payment_whose_notice_was_lost_is_found_by_the_query(
    buyer: Buyer, gateway: Any, shop: Any, django_capture_on_commit_callbacks: Any
) -> None:
    order = checkout(buyer, ("test_tea", "t1", 1))
    gateway.pay(order.order_no)  # paid at the gateway; the notice never arrives
    soon = timezone.now() + dt.timedelta(minutes=9)
    assert pending_payments_settle(now=soon)["queried"] == 0  # not yet 10 minutes
    later = timezone.now() + dt.timedelta(minutes=11)
    with django_capture_on_commit_callbacks(execute=True):
        assert pending_payments_settle(now=later) == {"queried": 1, "settled": 1, "unpaid": 0, "failed": 0}
        assert pending_payments_settle(now=later)["queried"] == 0  # settled: not queried again
    order.refresh_from_db()
    assert order.status == Order.Status.COMPLETED and len(shop.paid) == 1
    balanced(order)


def test_an_unpaid_pending_payment_stays_unpaid(buyer: Buyer, gateway: Any, shop: Any) -> None:
    order = checkout(buyer, ("test_tea", "t1", 1))
    later = timezone.now() + dt.timedelta(minutes=11)
    assert pending_payments_settle(now=later) == {"queried": 1, "settled": 0, "unpaid": 1, "failed": 0}
    assert Order.objects.get(pk=order.pk).status == Order.Status.CREATED
    assert not Payment.objects.filter(status="succeeded").exists()


def test_the_bill_is_compared_with_the_ledger_and_every_difference_listed(
    buyer: Buyer, gateway: Any, shop: Any, django_capture_on_commit_callbacks: Any
) -> None:
    agent = make_staff(Role.CS_AGENT, "cs1")
    orders = [checkout(buyer, ("test_tea", f"t{i}", 1)) for i in range(4)]
    for o in orders:
        with django_capture_on_commit_callbacks(execute=True):
            services.payment_notice_apply(gateway.pay(o.order_no))
    refund = services.refund_request(user=buyer.account.user, order_no=orders[0].order_no, reason="不想要了")
    with django_capture_on_commit_callbacks(execute=True):
        services.refund_approve(staff=agent.user, refund_no=refund.refund_no)
    with django_capture_on_commit_callbacks(execute=True):
        services.payment_notice_apply(gateway.refund_notice(refund.refund_no))
    day = timezone.now().astimezone(SH).date()
    clean = bill_reconcile(provider="fake", day=day)
    assert (clean.bill_lines, clean.ledger_lines, clean.differences) == (5, 5, 0)

    # Seed differences: the gateway billed a charge we never recorded, lost one of
    # ours, and billed another for a different amount.
    gateway.extra_bill.append(
        BillLine(
            order_no="CO_ghost_0001",
            transaction_id="4200ghost",
            kind="charge",
            amount_fen=100,
            occurred_at=timezone.now(),
        )
    )
    lost = gateway.trades.pop(orders[1].order_no)
    gateway.trades[orders[2].order_no]["amount"] = 3700
    report = bill_reconcile(provider="fake", day=day)
    lines = {(x.problem, x.order_no): x for x in ReconciliationLine.objects.filter(report=report)}
    assert report.differences == 3 and set(lines) == {
        ("missing_local", "CO_ghost_0001"),
        ("missing_provider", orders[1].order_no),
        ("amount_mismatch", orders[2].order_no),
    }
    mismatch = lines[("amount_mismatch", orders[2].order_no)]
    assert (mismatch.local_fen, mismatch.provider_fen) == (3800, 3700)
    assert lines[("missing_provider", orders[1].order_no)].reference == lost["txn"]
    # Staff with the reconciliation role read it through the API, others are refused.
    admin = make_staff(Role.SYSADMIN, "sys1").api()
    detail = admin.get(f"/commerce/reconciliation/{report.pk}").json()
    assert detail["differences"] == 3 and len(detail["lines"]) == 3
    assert agent.api().get(f"/commerce/reconciliation/{report.pk}").status_code == 403


def test_a_refund_the_provider_never_accepted_is_sent_again(
    buyer: Buyer, gateway: Any, shop: Any, django_capture_on_commit_callbacks: Any
) -> None:
    agent = make_staff(Role.CS_AGENT, "cs1")
    order = checkout(buyer, ("test_tea", "t1", 1))
    with django_capture_on_commit_callbacks(execute=True):
        services.payment_notice_apply(gateway.pay(order.order_no))
    refund = services.refund_request(user=buyer.account.user, order_no=order.order_no, reason="不想要了")
    gateway.fail_next.add("refund")
    with django_capture_on_commit_callbacks(execute=True):
        services.refund_approve(staff=agent.user, refund_no=refund.refund_no)
    assert gateway.refunds == {}
    assert refunds_resubmit(now=timezone.now() + dt.timedelta(minutes=9)) == {"resubmitted": 0, "settled": 0}
    assert refunds_resubmit(now=timezone.now() + dt.timedelta(minutes=11)) == {"resubmitted": 1, "settled": 0}
    assert gateway.refunds[refund.refund_no]["amount"] == 3800
    assert refunds_resubmit(now=timezone.now() + dt.timedelta(minutes=11)) == {"resubmitted": 0, "settled": 0}
    with django_capture_on_commit_callbacks(execute=True):
        services.payment_notice_apply(gateway.refund_notice(refund.refund_no))
    assert balanced(order)["received"] == 0


def test_staff_run_a_reconciliation_for_a_past_day(buyer: Buyer, gateway: Any, shop: Any) -> None:
    admin = make_staff(Role.SYSADMIN, "sys2").api()
    yesterday = (timezone.now().astimezone(SH) - dt.timedelta(days=1)).date()
    gateway.extra_bill.append(
        BillLine(
            order_no="CO_ghost_0002",
            transaction_id="4200ghost2",
            kind="charge",
            amount_fen=5,
            occurred_at=timezone.now(),
        )
    )
    r = admin.post("/commerce/reconciliation", {"provider": "fake", "day": yesterday.isoformat()})
    assert r.status_code == 201, r.content
    assert r.json()["differences"] == 1 and r.json()["lines"][0]["problem"] == "missing_local"
    today = timezone.now().astimezone(SH).date().isoformat()
    assert admin.post("/commerce/reconciliation", {"provider": "fake", "day": today}).status_code == 422
    assert buyer.account.api().post("/commerce/reconciliation", {"provider": "fake", "day": today}).status_code == 403
    assert admin.get("/commerce/reconciliation").json()["count"] == 1
