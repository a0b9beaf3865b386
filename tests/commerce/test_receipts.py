"""Electronic receipts (ADR 0044): issued once on payment, voided on a full refund,
voided and issued again for what is kept after a partial refund; a busy platform is
retried, a refusal goes to staff, nothing for an order nothing was kept of; the
sandbox platform is refused in production."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
from django.core.cache import cache
from django.test import override_settings
from django.utils import timezone

from apps.accounts.roles import Role
from apps.audit.models import AuditEvent
from apps.commerce import services
from apps.commerce.models import Order, Receipt
from apps.commerce.receipts.base import get_platform
from apps.commerce.receipts.sandbox import SandboxReceiptPlatform
from apps.commerce.receipts.services import receipt_issue, receipts_sweep
from apps.commerce.todos import commerce_todos
from hub.outside import SandboxInProduction
from tests.commerce.conftest import Buyer, balanced, checkout
from tests.conftest import Api, make_staff

pytestmark = pytest.mark.django_db
_agents = itertools.count()


@pytest.fixture(autouse=True)
def _fresh_platform() -> None:
    cache.clear()


def _paid(buyer: Buyer, gateway: Any, capture: Any, *lines: tuple[str, str, int]) -> Order:
    order = checkout(buyer, *lines)
    with capture(execute=True):
        services.payment_notice_apply(gateway.pay(order.order_no))
    order.refresh_from_db()
    return order


def _verify(r: Receipt) -> str:
    return SandboxReceiptPlatform.verify(code=r.code, number=r.number, check_code=r.check_code, amount_fen=r.amount_fen)


def _refund(buyer: Buyer, gateway: Any, capture: Any, order: Order, items: list[tuple[int, int]] | None) -> None:
    agent = make_staff(Role.CS_AGENT, f"cs{order.pk}_{next(_agents)}")
    refund = services.refund_request(user=buyer.account.user, order_no=order.order_no, reason="不需要了", items=items)
    with capture(execute=True):
        services.refund_approve(staff=agent.user, refund_no=refund.refund_no)
    with capture(execute=True):
        services.payment_notice_apply(gateway.refund_notice(refund.refund_no))
    order.refresh_from_db()


def test_a_paid_order_gets_one_receipt_the_patient_sees(
    buyer: Buyer, gateway: Any, shop: Any, django_capture_on_commit_callbacks: Any
) -> None:
    order = _paid(buyer, gateway, django_capture_on_commit_callbacks, ("test_consult", "c1", 1), ("test_tea", "t", 2))
    (receipt,) = order.receipts.all()
    assert receipt.status == Receipt.Status.ISSUED and receipt.amount_fen == order.paid_fen == 12600
    assert len(receipt.code) == 8 and len(receipt.number) == 10 and len(receipt.check_code) == 6
    assert _verify(receipt) == "有效"
    # Asked again (a re-delivered task), the platform answers the same receipt: issued once.
    assert receipt_issue(receipt.pk) == Receipt.Status.ISSUED
    assert SandboxReceiptPlatform.issued_count() == 1
    detail = Api(services_token(buyer)).get(f"/commerce/orders/{order.order_no}").json()
    (shown,) = detail["receipts"]
    assert shown["status_label"] == "已开具" and shown["amount"]["yuan"] == "¥126.00"
    assert (shown["code"], shown["number"], shown["check_code"]) == (receipt.code, receipt.number, receipt.check_code)
    audit = AuditEvent.objects.get(action="commerce.receipt_issued")
    assert audit.detail == {"order_no": order.order_no, "amount_fen": 12600}


def services_token(buyer: Buyer) -> str:
    from apps.accounts.services import token_issue

    return token_issue(user=buyer.account.user).raw


def test_a_full_refund_voids_the_receipt_and_a_partial_one_reissues_what_is_kept(
    buyer: Buyer, gateway: Any, shop: Any, django_capture_on_commit_callbacks: Any
) -> None:
    capture = django_capture_on_commit_callbacks
    order = _paid(buyer, gateway, capture, ("test_consult", "c1", 1), ("test_tea", "t", 2))
    first = order.receipts.get()
    tea = order.items.get(kind="test_tea")
    _refund(buyer, gateway, capture, order, [(tea.pk, 3800)])
    assert order.status == Order.Status.PARTIALLY_REFUNDED
    balanced(order)
    first.refresh_from_db()
    assert first.status == Receipt.Status.VOIDED and first.voided_at is not None and _verify(first) == "已冲红"
    second = order.receipts.exclude(pk=first.pk).get()
    assert second.status == Receipt.Status.ISSUED and second.amount_fen == 12600 - 3800 and _verify(second) == "有效"
    assert second.number != first.number

    _refund(buyer, gateway, capture, order, None)  # the rest
    assert order.status == Order.Status.REFUNDED
    second.refresh_from_db()
    assert second.status == Receipt.Status.VOIDED
    # Nothing is kept: no third receipt.
    assert order.receipts.count() == 2
    assert list(AuditEvent.objects.filter(action="commerce.receipt_voided").values_list("object_id", flat=True)) == [
        first.request_no,
        second.request_no,
    ]


def test_a_busy_platform_is_retried_and_a_refusal_waits_for_staff(
    buyer: Buyer, gateway: Any, shop: Any, django_capture_on_commit_callbacks: Any
) -> None:
    SandboxReceiptPlatform.fail_next(2, retryable=True)
    order = _paid(buyer, gateway, django_capture_on_commit_callbacks, ("test_consult", "c1", 1))
    receipt = order.receipts.get()
    assert receipt.status == Receipt.Status.PENDING and receipt.attempts == 1 and "E0500" in receipt.last_error
    # Not due yet: the sweep leaves it; due: tried (busy once more), then issued.
    assert receipts_sweep() == {"issued": 0, "voided": 0}
    later = timezone.now() + dt.timedelta(minutes=5)
    assert receipts_sweep(now=later) == {"issued": 0, "voided": 0}
    assert receipts_sweep(now=later + dt.timedelta(minutes=10)) == {"issued": 1, "voided": 0}
    receipt.refresh_from_db()
    assert receipt.status == Receipt.Status.ISSUED and receipt.attempts == 3 and receipt.last_error == ""

    SandboxReceiptPlatform.fail_next(1, retryable=False)
    other = _paid(buyer, gateway, django_capture_on_commit_callbacks, ("test_tea", "t2", 1))
    failed = other.receipts.get()
    assert failed.status == Receipt.Status.FAILED and "E0102" in failed.last_error
    assert receipts_sweep(now=later + dt.timedelta(hours=2)) == {"issued": 0, "voided": 0}  # never retried alone
    agent = make_staff(Role.CS_AGENT, "receiptagent")
    (todo,) = [t for t in commerce_todos(agent.user) if t.kind == "commerce.receipts_failed"]
    assert todo.count == 1 and todo.title == "开具失败的电子票据"
    # A patient cannot retry; staff can, and it is issued.
    patient_try = Api(services_token(buyer)).post(f"/commerce/receipts/{failed.request_no}/retry")
    assert patient_try.status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        r = agent.api().post(f"/commerce/receipts/{failed.request_no}/retry")
    assert r.status_code == 200, r.json()
    failed.refresh_from_db()
    assert failed.status == Receipt.Status.ISSUED
    assert not [t for t in commerce_todos(agent.user) if t.kind == "commerce.receipts_failed"]


def test_no_receipt_when_nothing_was_kept_or_receipts_are_off(
    buyer: Buyer, gateway: Any, shop: Any, django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    # Cancelled unpaid: nothing paid, nothing issued.
    order = checkout(buyer, ("test_consult", "c1", 1))
    services.order_cancel(user=buyer.account.user, order_no=order.order_no)
    assert not Receipt.objects.exists()
    # Paid after it expired: refunded automatically, never receipted.
    late = checkout(buyer, ("test_consult", "c2", 1))
    services.order_expire(late.pk, now=late.expires_at + dt.timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        services.payment_notice_apply(gateway.pay(late.order_no))
    assert not Receipt.objects.exists() and SandboxReceiptPlatform.issued_count() == 0
    # A deployment without an electronic receipt platform opens none.
    settings.RECEIPTS_PLATFORM = ""
    _paid(buyer, gateway, django_capture_on_commit_callbacks, ("test_consult", "c3", 1))
    assert not Receipt.objects.exists()


def test_production_refuses_the_sandbox_platform() -> None:
    with override_settings(PRODUCTION=True), pytest.raises(SandboxInProduction):
        get_platform()
