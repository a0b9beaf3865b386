"""Unpaid timeout (time travel through ``now=``), patient cancel, refunds with
approvals, partial refunds keeping the ledger balanced, the ledger's own guards."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from apps.accounts.roles import Role
from apps.audit.models import AuditEvent
from apps.commerce import services
from apps.commerce.errors import CommerceCode
from apps.commerce.models import LedgerEntry, Order, Payment, Refund
from apps.commerce.selectors import refunds_awaiting
from apps.commerce.tasks import expire_unpaid_orders
from apps.commerce.todos import commerce_todos
from hub.errors import ApiError
from tests.commerce.conftest import Buyer, balanced, checkout
from tests.conftest import make_staff


def paid(buyer: Buyer, gateway: Any, capture: Any, *lines: tuple[str, str, int]) -> Order:
    order = checkout(buyer, *lines)
    with capture(execute=True):
        services.payment_notice_apply(gateway.pay(order.order_no))
    order.refresh_from_db()
    return order


def test_an_unpaid_order_cancels_itself_after_its_timeout(
    buyer: Buyer, gateway: Any, shop: Any, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.COMMERCE_UNPAID_TIMEOUT_MINUTES = 15
    order = checkout(buyer, ("test_tea", "t1", 1))
    assert order.expires_at == order.created_at + dt.timedelta(minutes=15)
    # One second early: nothing happens (neither the task nor the sweep).
    early = order.expires_at - dt.timedelta(seconds=1)
    assert services.order_expire(order.pk, now=early) is False
    assert services.orders_expire_due(now=early) == {"expired": 0}
    assert Order.objects.get(pk=order.pk).status == Order.Status.CREATED and gateway.closed == []
    with django_capture_on_commit_callbacks(execute=True):
        assert services.order_expire(order.pk, now=order.expires_at) is True
        assert services.order_expire(order.pk, now=order.expires_at) is False  # re-run: nothing more
        assert services.orders_expire_due(now=order.expires_at) == {"expired": 0}
    order.refresh_from_db()
    assert order.status == Order.Status.CANCELLED and order.cancel_reason == Order.CancelReason.EXPIRED
    assert gateway.closed == [order.order_no]  # closed at the provider once
    assert Payment.objects.get(order=order).status == Payment.Status.CLOSED
    assert AuditEvent.objects.filter(action="commerce.expire", object_id=order.order_no).count() == 1
    assert not LedgerEntry.objects.filter(order=order).exists()


def test_the_periodic_sweep_cancels_what_is_due(buyer: Buyer, gateway: Any, shop: Any) -> None:
    order = checkout(buyer, ("test_tea", "t1", 1))
    Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    expire_unpaid_orders.call_local()
    assert Order.objects.get(pk=order.pk).status == Order.Status.CANCELLED


def test_the_patient_cancels_an_unpaid_order_but_not_a_paid_one(
    buyer: Buyer, gateway: Any, shop: Any, django_capture_on_commit_callbacks: Any
) -> None:
    order = checkout(buyer, ("test_tea", "t1", 1))
    with django_capture_on_commit_callbacks(execute=True):
        services.order_cancel(user=buyer.account.user, order_no=order.order_no)
    assert Order.objects.get(pk=order.pk).cancel_reason == Order.CancelReason.PATIENT
    assert gateway.closed == [order.order_no]
    done = paid(buyer, gateway, django_capture_on_commit_callbacks, ("test_tea", "t2", 1))
    with pytest.raises(ApiError) as exc:
        services.order_cancel(user=buyer.account.user, order_no=done.order_no)
    assert exc.value.code == CommerceCode.TRANSITION_REFUSED and exc.value.status == 409
    assert Order.objects.get(pk=done.pk).status == Order.Status.COMPLETED


def test_a_partial_refund_leaves_the_ledger_balanced(
    buyer: Buyer, gateway: Any, shop: Any, django_capture_on_commit_callbacks: Any
) -> None:
    agent = make_staff(Role.CS_AGENT, "cs1")
    order = paid(buyer, gateway, django_capture_on_commit_callbacks, ("test_consult", "c1", 1), ("test_tea", "t1", 2))
    tea = order.items.get(kind="test_tea")
    refund = services.refund_request(
        user=buyer.account.user, order_no=order.order_no, reason="茶包少发一包", items=[(tea.pk, 3800)]
    )
    order.refresh_from_db()
    assert order.status == Order.Status.REFUND_REQUESTED and refund.amount_fen == 3800
    assert gateway.refunds == {}  # nothing asked before approval
    with django_capture_on_commit_callbacks(execute=True):
        services.refund_approve(staff=agent.user, refund_no=refund.refund_no)
    assert gateway.refunds[refund.refund_no]["amount"] == 3800
    assert Refund.objects.get(pk=refund.pk).status == Refund.Status.PROCESSING
    balanced(order)  # nothing moved yet
    notice = gateway.refund_notice(refund.refund_no)
    for wrong in ({"app_id": "wxother"}, {"refund_amount_fen": 3700}, {"merchant_id": "1"}):
        with pytest.raises(ApiError):
            services.payment_notice_apply(dataclasses.replace(notice, **wrong))
    assert Refund.objects.get(pk=refund.pk).status == Refund.Status.PROCESSING
    with django_capture_on_commit_callbacks(execute=True):
        # WeChat's refund notices carry no app id: accepted without one.
        services.payment_notice_apply(dataclasses.replace(notice, app_id=""))
    order.refresh_from_db()
    assert order.status == Order.Status.PARTIALLY_REFUNDED and order.refunded_fen == 3800
    b = balanced(order)
    assert b["received"] == 8800 + 3800 - 3800 and b["refund"] == 3800
    assert [e.refund_fen for e in shop.refunded] == [3800]  # the tea app reverses its part, once
    tea.refresh_from_db()
    assert tea.refunded_fen == 3800
    # The rest can be refunded later; more than what is left cannot.
    with pytest.raises(ApiError) as exc:
        services.refund_request(user=buyer.account.user, order_no=order.order_no, reason="再退", items=[(tea.pk, 3801)])
    assert exc.value.code == CommerceCode.REFUND_AMOUNT_INVALID
    assert Refund.objects.count() == 1


def test_a_rejected_refund_returns_the_order_and_moves_no_money(
    buyer: Buyer, gateway: Any, shop: Any, django_capture_on_commit_callbacks: Any
) -> None:
    agent = make_staff(Role.CS_AGENT, "cs1")
    order = paid(buyer, gateway, django_capture_on_commit_callbacks, ("test_tea", "t1", 1))
    refund = services.refund_request(user=buyer.account.user, order_no=order.order_no, reason="不想要了")
    services.refund_reject(staff=agent.user, refund_no=refund.refund_no, reason="已发货，不予退款")
    order.refresh_from_db()
    assert order.status == Order.Status.COMPLETED
    assert Refund.objects.get(pk=refund.pk).status == Refund.Status.REJECTED
    assert gateway.refunds == {} and order.refunded_fen == 0
    assert balanced(order)["refund"] == 0


def test_a_large_refund_needs_a_second_role(
    buyer: Buyer, gateway: Any, shop: Any, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.COMMERCE_REFUND_APPROVAL_FEN = 5000
    agent = make_staff(Role.CS_AGENT, "cs1")
    agent2 = make_staff(Role.CS_AGENT, "cs2")
    admin = make_staff(Role.SYSADMIN, "sys1")
    doctor = make_staff(Role.DOCTOR, "doc1")
    order = paid(buyer, gateway, django_capture_on_commit_callbacks, ("test_consult", "c1", 1), ("test_tea", "t1", 1))
    refund = services.refund_request(user=buyer.account.user, order_no=order.order_no, reason="医生停诊")
    assert refund.amount_fen == 8800
    with pytest.raises(ApiError):
        services.refund_approve(staff=doctor.user, refund_no=refund.refund_no)
    with django_capture_on_commit_callbacks(execute=True):
        services.refund_approve(staff=agent.user, refund_no=refund.refund_no)
    assert Refund.objects.get(pk=refund.pk).status == Refund.Status.APPROVED and gateway.refunds == {}
    # The to-do moves from the refund roles to the second-approval role.
    assert not refunds_awaiting(agent.user).exists() and not refunds_awaiting(agent2.user).exists()
    assert list(refunds_awaiting(admin.user)) == [refund]
    assert [t.kind for t in commerce_todos(admin.user)] == ["commerce.refunds_to_approve"]
    assert commerce_todos(agent.user) == []
    for wrong in (agent, agent2):  # the same person, or the same role, cannot give the second approval
        with pytest.raises(ApiError) as exc:
            services.refund_approve(staff=wrong.user, refund_no=refund.refund_no)
        assert exc.value.code == CommerceCode.REFUND_SECOND_APPROVER
    assert gateway.refunds == {}
    with django_capture_on_commit_callbacks(execute=True):
        services.refund_approve(staff=admin.user, refund_no=refund.refund_no)
    refund.refresh_from_db()
    assert refund.status == Refund.Status.PROCESSING and refund.second_approved_by == admin.user
    assert gateway.refunds[refund.refund_no]["amount"] == 8800
    with django_capture_on_commit_callbacks(execute=True):
        services.payment_notice_apply(gateway.refund_notice(refund.refund_no))
    order.refresh_from_db()
    assert order.status == Order.Status.REFUNDED
    assert balanced(order)["received"] == 0
    assert AuditEvent.objects.filter(action="commerce.refund_approve_first").count() == 1
    assert AuditEvent.objects.filter(action="commerce.refund_approve").count() == 1


def test_a_failed_refund_moves_no_money_and_can_be_retried(
    buyer: Buyer, gateway: Any, shop: Any, django_capture_on_commit_callbacks: Any
) -> None:
    agent = make_staff(Role.CS_AGENT, "cs1")
    order = paid(buyer, gateway, django_capture_on_commit_callbacks, ("test_tea", "t1", 1))
    refund = services.refund_request(user=buyer.account.user, order_no=order.order_no, reason="不想要了")
    gateway.refund_answer = "failed"
    with django_capture_on_commit_callbacks(execute=True):
        services.refund_approve(staff=agent.user, refund_no=refund.refund_no)
    refund.refresh_from_db()
    assert refund.status == Refund.Status.FAILED
    order.refresh_from_db()
    assert order.refunded_fen == 0 and balanced(order)["refund"] == 0
    gateway.refund_answer = "success"
    with django_capture_on_commit_callbacks(execute=True):
        services.refund_retry(staff=agent.user, refund_no=refund.refund_no)
    order.refresh_from_db()
    assert order.status == Order.Status.REFUNDED and balanced(order)["received"] == 0


def test_the_database_refuses_an_unbalanced_or_rewritten_ledger(
    buyer: Buyer, gateway: Any, shop: Any, django_capture_on_commit_callbacks: Any
) -> None:
    order = paid(buyer, gateway, django_capture_on_commit_callbacks, ("test_tea", "t1", 1))
    entry = LedgerEntry.objects.filter(order=order).first()
    assert entry is not None
    with pytest.raises(DatabaseError), transaction.atomic():
        LedgerEntry.objects.filter(pk=entry.pk).update(amount_fen=1)
    with pytest.raises(DatabaseError), transaction.atomic():
        LedgerEntry.objects.create(order=order, kind="payment", amount_fen=-1)
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    with pytest.raises(DatabaseError), transaction.atomic():
        Order.objects.filter(pk=order.pk).update(refunded_fen=100)
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    balanced(order)


def test_a_domain_rule_refunds_without_approval(
    buyer: Buyer, gateway: Any, shop: Any, django_capture_on_commit_callbacks: Any
) -> None:
    order = paid(buyer, gateway, django_capture_on_commit_callbacks, ("test_consult", "c1", 1), ("test_tea", "t1", 1))
    consult = order.items.get(kind="test_consult")
    with django_capture_on_commit_callbacks(execute=True):
        refund = services.order_refund_automatic(
            order_no=order.order_no, reason="医生终止问诊，转线下就诊", item_ids=[consult.pk]
        )
    assert refund is not None and refund.amount_fen == 5000 and refund.source == Refund.Source.AUTOMATIC
    assert gateway.refunds[refund.refund_no]["amount"] == 5000  # no approval step
    with django_capture_on_commit_callbacks(execute=True):
        services.payment_notice_apply(gateway.refund_notice(refund.refund_no))
    order.refresh_from_db()
    assert order.status == Order.Status.PARTIALLY_REFUNDED and balanced(order)["received"] == 3800
    # Nothing left on that item: a second automatic refund of it does nothing.
    assert services.order_refund_automatic(order_no=order.order_no, reason="再次", item_ids=[consult.pk]) is None
    assert Refund.objects.count() == 1
