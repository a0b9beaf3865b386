"""Commerce demo orders (registered with apps.accounts.demo) for 张伟's family:
one completed (a tea-bag purchase that waived the consultation fee), one with a
refund request waiting for 刘客服, one cancelled by the patient and one waiting
for payment (the pay sheet opens it). Real sandbox trades: seeding runs without
the web server, so the sandbox provider reaches the sandbox gateway in process
(``InProcessTransport``: the same signed WeChat Pay v3 requests, no socket), and
payments are confirmed by querying it, as the reconciliation task does.
Idempotent: nothing is added once 张伟 has an order."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction

from apps.accounts.demo import demo_patient
from apps.accounts.models import Patient

from . import pricing, services
from .models import Order
from .registry import Quote, QuoteFn, register_item_kind

log = logging.getLogger(__name__)
FAMILY_PHONE = "13800138001"
DEMO_PRICES = {"demo_consultation": ("复诊问诊费（心内科）", 5000), "demo_tea_bag": ("安神代茶饮（7袋）", 3800)}


def _quote(title: str, fen: int) -> QuoteFn:
    return lambda patient, ref, quantity: Quote(title=title, unit_price_fen=fen)


def register_demo_kinds() -> None:
    """The demo's kinds and waiver (apps.py registers them wherever the sandbox pays)."""
    for kind, (title, fen) in DEMO_PRICES.items():
        register_item_kind(kind, title=title, quote=_quote(title, fen))
    pricing.register_waiver(
        "demo_tea_waives_consultation",
        title="购买代茶饮免复诊问诊费",
        trigger_kind="demo_tea_bag",
        waived_kind="demo_consultation",
    )


def _checkout(account: object, patient: Patient, key: str, *kinds: str) -> Order:
    return services.order_checkout(
        payer=account,  # type: ignore[arg-type]
        patient_id=patient.pk,
        lines=[services.CheckoutLine(kind=k, ref="demo", quantity=1) for k in kinds],
        client_key=f"demo-{key}",
        channel="sandbox",
        provider="sandbox",
    )


def _pay(order: Order) -> None:
    from .payments.sandbox import gateway

    gateway().pay(order.pay_params["sandboxTrade"], order.pay_params)
    notice = services.provider_for("sandbox").query(order.order_no)
    if notice is not None:
        services.payment_notice_apply(notice)
        # The demo kinds live in this process only: fulfil here once seed_demo commits.
        order_id = order.pk
        transaction.on_commit(lambda: services.fulfilments_run(order_id))


def seed_commerce() -> str:
    account = demo_patient(FAMILY_PHONE)
    if account is None or "sandbox" not in getattr(settings, "PAYMENT_PROVIDERS", {}):
        return ""
    me = Patient.objects.filter(owner=account, name="张伟", is_active=True).first()
    child = Patient.objects.filter(owner=account, name="张小明", is_active=True).first()
    if me is None or child is None or Order.objects.filter(payer=account).exists():
        return ""
    from .payments.sandbox import SandboxWechatPay

    register_demo_kinds()
    # The gateway in process whatever PAYMENTS_SANDBOX_IN_PROCESS says: no server runs while seeding.
    provider = SandboxWechatPay(name="sandbox", in_process=True)
    try:
        with transaction.atomic(), services.provider_override(provider):
            done = _checkout(account, me, "completed", "demo_consultation", "demo_tea_bag")
            _pay(done)
            asked = _checkout(account, child, "refund", "demo_tea_bag")
            _pay(asked)
            services.refund_request(user=account, order_no=asked.order_no, reason="孩子不喜欢这个口味，未拆封")
            cancelled = _checkout(account, me, "cancelled", "demo_tea_bag")
            services.order_cancel(user=account, order_no=cancelled.order_no)
            _checkout(account, me, "unpaid", "demo_consultation")
    except Exception:  # the demo starts without orders rather than not at all
        log.exception("commerce demo orders not seeded")
        return ""
    return "订单     张伟 一家：已完成、退款待审核（刘客服审核）、已取消、待支付各一笔（模拟支付）"
