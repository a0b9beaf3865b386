"""security.md 3.15 and 6.3: when the audit record of a refund approval or of a
payment notice cannot be written, the action rolls back as a whole. Another
connection holds the audit chain's head (as a stuck writer would) and this
connection gives up waiting: nothing is approved, nothing is sent to the
provider, nothing is recorded, and a payment notice is not answered ``success``
(the gateway sends it again). Once the head is free the same request goes through."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg2
import pytest
from django.conf import settings
from django.db import connection
from django.test import Client

from apps.accounts.roles import Role
from apps.audit.models import AuditEvent
from apps.audit.services import audit_record
from apps.commerce import services
from apps.commerce.models import LedgerEntry, Order, Payment, Refund
from tests.commerce.conftest import Buyer, balanced, checkout
from tests.conftest import make_staff

pytestmark = pytest.mark.django_db(transaction=True)


@contextmanager
def audit_head_held() -> Iterator[None]:
    """Hold the audit head's row lock on another connection; this one waits 300 ms at most."""
    audit_record(action="auth.login", actor_username="setup")  # the chain has a head to hold
    db = settings.DATABASES["default"]
    holder = psycopg2.connect(
        dbname=connection.settings_dict["NAME"], user=db["USER"], host=db["HOST"], port=db["PORT"] or 5432
    )
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        with holder.cursor() as cursor:
            cursor.execute("SELECT id FROM audit_audithead FOR UPDATE")
            locked.set()
            release.wait(30)
        holder.rollback()

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert locked.wait(10)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '300ms'")
        yield
    finally:
        release.set()
        thread.join(10)
        holder.close()
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = 0")


def _notify(gateway: Any, notice: Any) -> Any:
    body = gateway.body(notice)
    return Client().post(
        "/api/v1/commerce/notify/fake", body, content_type="application/json", HTTP_X_FAKE_SIGNATURE=gateway.sign(body)
    )


def test_a_refund_approval_whose_audit_cannot_be_written_approves_and_sends_nothing(
    buyer: Buyer, gateway: Any, shop: Any
) -> None:
    order = checkout(buyer, ("test_tea", "t1", 1))
    assert _notify(gateway, gateway.pay(order.order_no)).status_code == 200
    refund = services.refund_request(user=buyer.account.user, order_no=order.order_no, reason="茶包破损")
    agent = make_staff(Role.CS_AGENT, "csrollback").api()

    with audit_head_held():
        before = AuditEvent.objects.count()
        r = agent.post(f"/commerce/refunds/{refund.refund_no}/approve")
        assert r.status_code == 503, r.content
        assert r.json()["code"] == "service_unavailable"

    refund.refresh_from_db()
    assert refund.status == Refund.Status.REQUESTED and refund.approved_by is None
    assert gateway.refunds == {}  # nothing asked of the provider
    assert AuditEvent.objects.count() == before
    assert not AuditEvent.objects.filter(action="commerce.refund_approve").exists()
    assert Order.objects.get(pk=order.pk).refunded_fen == 0
    balanced(order)

    # Once the head is free the same approval goes through, recorded, and the provider is asked.
    r = agent.post(f"/commerce/refunds/{refund.refund_no}/approve")
    assert r.status_code == 200, r.content
    assert r.json()["status"] == "processing"
    assert gateway.refunds[refund.refund_no]["amount"] == 3800
    assert AuditEvent.objects.filter(action="commerce.refund_approve", object_id=refund.refund_no).count() == 1


def test_a_payment_notice_whose_audit_cannot_be_written_is_not_acknowledged_and_records_nothing(
    buyer: Buyer, gateway: Any, shop: Any
) -> None:
    order = checkout(buyer, ("test_tea", "t1", 1))
    notice = gateway.pay(order.order_no)

    with audit_head_held():
        before = AuditEvent.objects.count()
        r = _notify(gateway, notice)
        assert r.status_code == 503, r.content
        assert b"SUCCESS" not in r.content

    assert Order.objects.get(pk=order.pk).status == Order.Status.CREATED
    assert not Payment.objects.filter(status=Payment.Status.SUCCEEDED).exists()
    assert not LedgerEntry.objects.filter(order=order).exists()
    assert AuditEvent.objects.count() == before
    assert shop.paid == []  # nothing fulfilled

    # The gateway's retry of the same notice is recorded once and answered success.
    r = _notify(gateway, notice)
    assert r.status_code == 200 and r.json() == {"code": "SUCCESS"}
    assert Order.objects.get(pk=order.pk).paid_fen == 3800
    assert Payment.objects.filter(order=order, status=Payment.Status.SUCCEEDED).count() == 1
    assert AuditEvent.objects.filter(action="commerce.paid", object_id=order.order_no).count() == 1
    balanced(order)
