"""security.md 3.5: every step of a refund leaves one audit record (who, what,
result), with ids and amounts only: request, rejection, approval, the provider's
failure, the retry and the refund's success. A refused step records nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from apps.accounts.roles import Role
from apps.audit.models import AuditEvent
from apps.commerce import services
from apps.commerce.models import Order, Refund
from hub.errors import ApiError
from tests.commerce.conftest import Buyer, balanced, checkout
from tests.conftest import make_staff

pytestmark = pytest.mark.django_db


def _trail(refund_no: str) -> list[tuple[str, str, str]]:
    return list(
        AuditEvent.objects.filter(object_type="commerce_refund", object_id=refund_no)
        .order_by("id")
        .values_list("action", "actor_username", "result")
    )


def test_each_refund_step_is_audited_once_with_ids_and_amounts_only(
    buyer: Buyer, gateway: Any, shop: Any, django_capture_on_commit_callbacks: Any
) -> None:
    agent = make_staff(Role.CS_AGENT, "csaudit")
    patient = buyer.account.user
    order = checkout(buyer, ("test_tea", "t1", 1))
    with django_capture_on_commit_callbacks(execute=True):
        services.payment_notice_apply(gateway.pay(order.order_no))
    assert AuditEvent.objects.filter(action="commerce.paid", object_id=order.order_no).count() == 1

    # A request the staff reject: two records, the order back where it was, no money moved.
    first = services.refund_request(user=patient, order_no=order.order_no, reason="茶包破损要求退款")
    services.refund_reject(staff=agent.user, refund_no=first.refund_no, reason="已发货不予退款")
    assert _trail(first.refund_no) == [
        ("commerce.refund_request", patient.username, "ok"),
        ("commerce.refund_reject", agent.user.username, "ok"),
    ]
    assert gateway.refunds == {}

    # A refused step (the patient approving) records nothing.
    second = services.refund_request(user=patient, order_no=order.order_no, reason="不想要了")
    before = AuditEvent.objects.count()
    with pytest.raises(ApiError):
        services.refund_approve(staff=patient, refund_no=second.refund_no)
    assert AuditEvent.objects.count() == before
    assert Refund.objects.get(pk=second.pk).status == Refund.Status.REQUESTED

    # Approved, refused by the provider, retried, refunded: one record per step.
    gateway.refund_answer = "failed"
    with django_capture_on_commit_callbacks(execute=True):
        services.refund_approve(staff=agent.user, refund_no=second.refund_no)
    assert Refund.objects.get(pk=second.pk).status == Refund.Status.FAILED
    gateway.refund_answer = "success"
    with django_capture_on_commit_callbacks(execute=True):
        services.refund_retry(staff=agent.user, refund_no=second.refund_no)
    assert Order.objects.get(pk=order.pk).status == Order.Status.REFUNDED
    assert _trail(second.refund_no) == [
        ("commerce.refund_request", patient.username, "ok"),
        ("commerce.refund_approve", agent.user.username, "ok"),
        ("commerce.refund_failed", "system", "ok"),
        ("commerce.refund_retry", agent.user.username, "ok"),
        ("commerce.refunded", "system", "ok"),
    ]
    refunded = AuditEvent.objects.get(action="commerce.refunded")
    assert refunded.detail == {"order_no": order.order_no, "amount_fen": 3800}
    balanced(order)

    # Ids, codes and amounts only: no reason text, no patient name.
    details = json.dumps(
        list(AuditEvent.objects.filter(object_type="commerce_refund").values_list("detail", flat=True)),
        ensure_ascii=False,
    )
    for text in ("茶包破损", "不予退款", "不想要了", "张三"):
        assert text not in details
