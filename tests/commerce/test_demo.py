"""The demo seeder: orders in four states with real sandbox trades, idempotent."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.cache import cache
from django.core.management import call_command

from apps.accounts.demo import demo_patient
from apps.commerce.models import Order, Refund
from apps.commerce.payments.base import reset_providers
from apps.commerce.selectors import ledger_balance


@pytest.fixture
def sandbox_dir(settings: Any, tmp_path: Any) -> Any:
    cache.clear()
    settings.PAYMENTS_SANDBOX_DIR = tmp_path / "sandbox"
    settings.PAYMENTS_SANDBOX_DELIVERY = "inline"
    settings.PAYMENTS_PUBLIC_BASE_URL = "http://127.0.0.1:9"  # nothing listens: callbacks stay queued
    settings.PAYMENT_PROVIDERS = {
        "sandbox": {
            "class": "apps.commerce.payments.sandbox.SandboxWechatPay",
            "base_url": "http://127.0.0.1:9/sandbox/pay",
            "timeout": 2.0,
        }
    }
    reset_providers()
    yield
    reset_providers()


def test_seed_demo_gives_the_family_orders_in_four_states(
    db: Any, sandbox_dir: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        out = StringIO()
        call_command("seed_demo", stdout=out)
    assert "订单" in out.getvalue()
    account = demo_patient("13800138001")
    orders = {o.status: o for o in Order.objects.filter(payer=account)}
    assert set(orders) == {"completed", "refund_requested", "cancelled", "created"}
    done = orders["completed"]
    assert done.waived_fen == 5000 and done.paid_fen == 3800
    assert Refund.objects.get(order=orders["refund_requested"]).status == "requested"
    assert orders["created"].pay_params["package"].startswith("prepay_id=")
    for o in orders.values():
        b = ledger_balance(o)
        assert b["balance"] == 0 and b["received"] == o.paid_fen - o.refunded_fen
    call_command("seed_demo", stdout=StringIO())
    assert Order.objects.filter(payer=account).count() == 4
