"""Chromium, the patient H5 app at 390x844: 我的订单 with seeded orders (created
through the commerce services, the sandbox payment provider), paying one through
the sandbox pay sheet with the gateway's asynchronous callback (已支付 appears
live, the page never reloads), cancelling another, asking a partial refund with
a reason (退款审核中), and 我的处方 (an approved prescription: 到院自取 chosen, the
pay sheet opened for its charge and closed unpaid)."""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import time
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from playwright.sync_api import expect

from apps.accounts.roles import Role
from apps.care_team.models import CareRelationship
from apps.care_team.services import relationship_open
from apps.commerce import registry, services
from apps.commerce.models import LedgerEntry, Order, Payment, Refund
from apps.commerce.payments.base import reset_providers
from apps.commerce.registry import Quote
from apps.delivery import services as delivery
from apps.delivery.errors import DeliveryError
from apps.delivery.models import Shipment
from apps.delivery.sources import ShipDecision, register_source, unregister_source
from apps.pharmacy import services as rx_services
from apps.pharmacy.models import Prescription
from apps.pharmacy.rules import DraftInput, LineInput
from tests.commerce.conftest import add_patient, balanced
from tests.conftest import make_patient, make_staff
from tests.e2e.conftest import _screenshots
from tests.e2e.helpers import patient_login
from tests.pharmacy.conftest import PIN, enrol, make_doctor
from tests.support.server import DaphneServer, free_port

pytestmark = pytest.mark.e2e

PHONE = "13612340412"
PHONE_PARCEL = "13612340415"
# Test-only item kinds (the test process prices them at checkout; nothing fulfils them).
E2E_KINDS = {
    "e2e_checkup": Quote(title="血常规检查", unit_price_fen=2500, discount_fen=500),
    "e2e_group": Quote(title="年度体检套餐（单位团体）", unit_price_fen=30000, payer="group"),
}


@pytest.fixture
def shop_server(transactional_db: Any, settings: Any, tmp_path: Path) -> Iterator[str]:
    yield from start_shop_server(settings, tmp_path)


def start_shop_server(settings: Any, tmp_path: Path, **env: str) -> Iterator[str]:
    """daphne on the test database with the sandbox gateway: callbacks go back to
    this server (thread delivery, as in the demo); the test process shares the
    gateway's directory so orders it creates are payable on the pay sheet."""
    built = Path(settings.FRONTEND_DIRS["h5"]) / "index.html"
    assert built.exists(), "the patient app is not built: cd frontend/patient && npm run build"
    cache.clear()  # login-code cooldowns of an earlier run (the server shares this Redis)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    sandbox_dir = tmp_path / "sandbox"
    settings.PAYMENTS_SANDBOX_DIR = sandbox_dir
    settings.PAYMENTS_PUBLIC_BASE_URL = url
    settings.PAYMENTS_SANDBOX_DELIVERY = "inline"  # the test's own pay (order C) posts its callback at once
    settings.COMMERCE_DEFAULT_PROVIDER = "sandbox"
    settings.PAYMENT_PROVIDERS = {
        "sandbox": {
            "class": "apps.commerce.payments.sandbox.SandboxWechatPay",
            "base_url": f"{url}/sandbox/pay",
            "refund_notify_url": f"{url}/api/v1/commerce/notify/sandbox/refund",
            "in_process": True,
        }
    }
    reset_providers()
    for kind, quote in E2E_KINDS.items():
        registry.register_item_kind(kind, title=quote.title, quote=_fixed_price(quote))
    server = DaphneServer(
        port,
        MEDIA_EMBEDDED="1",
        MEDIA_RTMP_PORT="0",
        MEDIA_HTTP_PORT="0",
        PAYMENTS_SANDBOX_DIR=str(sandbox_dir),
        PAYMENTS_PUBLIC_BASE_URL=url,
        PAYMENTS_SANDBOX_DELIVERY="thread",
        **env,
    ).start()
    try:
        yield server.url
    finally:
        server.stop()
        for kind in E2E_KINDS:
            registry.unregister_item_kind(kind)
        reset_providers()


def _fixed_price(quote: Quote) -> registry.QuoteFn:
    return lambda patient, ref, quantity: quote


def shot(page: Any, tag: str, scroll_to: str = "") -> None:
    """A screenshot of what the patient sees now (transitions settled), besides the per-navigation ones."""
    if scroll_to == "top":
        page.evaluate("window.scrollTo(0, 0)")
    elif scroll_to:
        page.locator(scroll_to).first.scroll_into_view_if_needed()
    page.wait_for_timeout(400)
    _screenshots.shoot(page, tag)


def _http(url: str, body: dict[str, Any]) -> Any:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=20) as answer:
        return json.loads(answer.read())


def _checkout(account: Any, patient: Any, *kinds: str) -> Order:
    return services.order_checkout(
        payer=account.user,
        patient_id=patient.pk,
        lines=[services.CheckoutLine(kind=k, ref="e2e", quantity=2 if k == "e2e_checkup" else 1) for k in kinds],
        client_key=secrets.token_hex(8),
        channel="sandbox",
    )


def _wait_status(order: Order, status: str) -> Order:
    for _ in range(100):
        order.refresh_from_db()
        if order.status == status:
            return order
        time.sleep(0.1)
    raise AssertionError(f"order {order.order_no} stayed {order.status}")


def _approved_prescription(patient: Any) -> Prescription:
    doctor = make_doctor("e2erxdoc")
    pharmacist = make_staff(Role.PHARMACIST, "e2erxph")
    relationship_open(staff=doctor.user, patient=patient, reason=CareRelationship.Reason.CARE_PLAN)
    enrol(doctor)
    p = rx_services.prescription_create(
        doctor=doctor.user,
        patient_id=patient.pk,
        draft=DraftInput(
            diagnosis="原发性高血压（2级），复诊续方",
            icd10_code="I10",
            valid_days=3,
            lines=[
                LineInput(
                    drug_code="AMLO-5", dose=Decimal("5"), frequency="qd", route="po", days=7, quantity=Decimal("1")
                ),
                LineInput(
                    drug_code="ATOR-20", dose=Decimal("20"), frequency="qn", route="po", days=7, quantity=Decimal("1")
                ),
            ],
        ),
    )
    rx_services.prescription_sign(doctor=doctor.user, prescription_id=p.pk, pin=PIN)
    rx_services.prescription_submit(doctor=doctor.user, prescription_id=p.pk)
    return rx_services.prescription_approve(pharmacist=pharmacist.user, prescription_id=p.pk)


def test_orders_pay_cancel_refund_and_prescriptions(shop_server: str, patient_page: Any) -> None:
    page, url = patient_page, shop_server
    account = make_patient(PHONE, "赵敏")
    me = add_patient(account, "赵敏")
    # C: paid before the test opens the app (the sandbox pays it; its callback reaches the server).
    to_refund = _checkout(account, me, "e2e_checkup", "demo_tea_bag")
    from apps.commerce.payments.sandbox import gateway

    gateway().pay(to_refund.pay_params["sandboxTrade"], to_refund.pay_params)
    to_refund = _wait_status(to_refund, Order.Status.PAID)
    # B: unpaid, to cancel. A: unpaid, to pay: a waived consultation and a group-paid line.
    to_cancel = _checkout(account, me, "demo_tea_bag")
    to_pay = _checkout(account, me, "demo_consultation", "demo_tea_bag", "e2e_group")
    assert (to_pay.total_fen, to_pay.waived_fen, to_pay.group_fen, to_pay.payable_fen) == (38800, 5000, 30000, 3800)
    rx = _approved_prescription(me)

    patient_login(page, url, PHONE)
    expect(page.locator("[data-testid=orders-badge]")).to_have_text("2")  # two unpaid orders
    shot(page, "home-")
    page.click("[data-testid=orders-entry]")

    # --- 我的订单: three orders, the tabs filter them ------------------------------------------
    rows = page.locator("[data-testid=order-item]")
    expect(rows).to_have_count(3)
    expect(rows.filter(has_text="待支付")).to_have_count(2)
    expect(page.locator("[data-testid=order-countdown]").first).to_contain_text("剩余 ")
    expect(rows.filter(has_text="已支付").locator("[data-testid=order-amount]")).to_have_text("¥83.00")
    shot(page, "list-")
    page.click("[data-testid=order-tab-unpaid]")
    expect(rows).to_have_count(2)
    page.click("[data-testid=order-tab-done]")
    expect(page.locator("[data-testid=state-empty]")).to_contain_text("没有已完成的订单")
    shot(page, "tab-done-")
    page.click("[data-testid=order-tab-all]")

    # --- A: the detail explains the waived and group-paid lines; pay on the sandbox sheet -------
    page.click(f"[data-testid=order-item][data-order={to_pay.order_no}]")
    expect(page.locator("[data-testid=order-detail-status]")).to_have_text("待支付")
    expect(page.locator("[data-testid=line-waived]")).to_contain_text("免收 -¥50.00")
    expect(page.locator("[data-testid=line-group]")).to_contain_text("团体支付 ¥300.00")
    expect(page.locator("[data-testid=order-payable]")).to_have_text("¥38.00")
    shot(page, "detail-unpaid-")
    shot(page, "detail-unpaid-lines-", scroll_to="[data-testid=order-payable]")
    page.evaluate("window.__sameDocument = 'yes'")  # gone if anything reloads the page
    # The gateway holds this trade's callback for 2 s: the sheet waits for it.
    _http(f"{url}/sandbox/pay/trades/{to_pay.pay_params['sandboxTrade']}/controls", {"delay_seconds": 2})
    page.click("[data-testid=order-pay]")
    expect(page.locator("[data-testid=pay-amount]")).to_have_text("¥38.00")
    expect(page.locator("[data-testid=pay-merchant]")).not_to_be_empty()
    expect(page.locator("[data-testid=pay-desc]")).to_contain_text("复诊问诊费")
    shot(page, "sheet-")
    page.click("[data-testid=pay-confirm]")
    expect(page.locator("[data-testid=pay-waiting]")).to_be_visible()
    _screenshots.shoot(page, "waiting-")  # at once: the callback is due in 2 s
    assert Order.objects.get(pk=to_pay.pk).status == Order.Status.CREATED  # the client's "ok" is not a payment
    expect(page.locator("[data-testid=pay-success]")).to_contain_text("支付成功", timeout=15000)
    shot(page, "success-")
    page.click("[data-testid=pay-view-order]")
    expect(page.locator("[data-testid=order-detail-status]")).to_have_text("已支付")
    expect(page.locator("[data-testid=order-detail-amount]")).to_have_text("¥38.00")
    # Its 电子票据 is issued after the payment and shown with what the payer verifies it by.
    receipt = page.locator("[data-testid=receipt-item]")
    expect(receipt.locator("[data-testid=receipt-status]")).to_have_text("已开具", timeout=15000)
    expect(receipt).to_contain_text("票据号码")
    expect(receipt).to_contain_text("¥38.00")
    assert page.evaluate("window.__sameDocument") == "yes"
    shot(page, "detail-paid-", scroll_to="top")
    paid = Order.objects.get(pk=to_pay.pk)
    assert (paid.status, paid.paid_fen) == (Order.Status.PAID, 3800)
    assert Payment.objects.filter(order=paid, status=Payment.Status.SUCCEEDED).count() == 1
    balanced(paid)

    # --- B: cancel with a confirmation ---------------------------------------------------------
    page.go_back()
    page.click(f"[data-testid=order-item][data-order={to_cancel.order_no}]")
    # Opening the pay sheet and closing it leaves the order unpaid.
    page.click("[data-testid=order-pay]")
    expect(page.locator("[data-testid=pay-amount]")).to_have_text("¥38.00")
    page.click("[data-testid=pay-cancel]")
    expect(page.locator("[data-testid=pay-cancelled]")).to_contain_text("订单仍为待支付")
    shot(page, "sheet-closed-")
    assert gateway().sheet(to_cancel.pay_params["sandboxTrade"])["cancelled"] == 1
    assert Order.objects.get(pk=to_cancel.pk).status == Order.Status.CREATED
    page.click("[data-testid=pay-cancelled-view]")
    expect(page.locator("[data-testid=order-detail-status]")).to_have_text("待支付")
    page.click("[data-testid=order-cancel]")
    expect(page.locator(".uni-modal")).to_contain_text("确定取消这笔订单吗")
    shot(page, "cancel-confirm-")
    page.click(".uni-modal__btn_primary")
    expect(page.locator("[data-testid=order-detail-status]")).to_have_text("已取消")
    expect(page.locator("[data-testid=order-pay]")).to_have_count(0)
    shot(page, "detail-cancelled-")
    cancelled = Order.objects.get(pk=to_cancel.pk)
    assert (cancelled.status, cancelled.paid_fen, cancelled.cancel_reason) == ("cancelled", 0, "patient")
    assert not Payment.objects.filter(order=cancelled, status=Payment.Status.SUCCEEDED).exists()
    assert not LedgerEntry.objects.filter(order=cancelled).exists()
    expect(page.locator("[data-testid=order-payments]")).to_have_count(0)  # the closed prepay is no payment

    # --- C: a partial refund (the check-up only) with a reason -----------------------------------
    page.go_back()
    page.click(f"[data-testid=order-item][data-order={to_refund.order_no}]")
    expect(page.locator("[data-testid=order-line]").first).to_contain_text("优惠 -¥5.00")
    page.click("[data-testid=order-refund]")
    sheet = page.locator("[data-testid=refund-sheet]")
    expect(sheet).to_be_visible()
    expect(page.locator("[data-testid=refund-submit]")).to_have_attribute("disabled", "true")  # no reason yet
    page.locator("[data-testid=refund-reason]", has_text="不需要了").click()
    page.locator("[data-testid=refund-reason-text] textarea").fill("检查改到下周，先退检查费")
    page.click("[data-testid=refund-scope-items]")
    page.locator("[data-testid=refund-pick]", has_text="血常规检查").click()
    expect(page.locator("[data-testid=refund-total]")).to_have_text("¥45.00")
    shot(page, "refund-sheet-")
    page.click("[data-testid=refund-submit]")
    expect(page.locator("[data-testid=refund-status]")).to_have_text("退款审核中")
    expect(page.locator("[data-testid=order-detail-status]")).to_have_text("退款审核中")
    shot(page, "detail-refund-")
    shot(page, "detail-refund-record-", scroll_to="[data-testid=order-refunds]")
    refund = Refund.objects.get(order=to_refund)
    assert refund.status == Refund.Status.REQUESTED and refund.amount_fen == 4500
    assert refund.reason == "不需要了：检查改到下周，先退检查费"
    assert [(line.item.kind, line.amount_fen) for line in refund.lines.select_related("item")] == [
        ("e2e_checkup", 4500)
    ]
    assert Order.objects.get(pk=to_refund.pk).refunded_fen == 0  # nothing returned before staff approve

    # --- staff approve it, the gateway's refund notice arrives: the open page follows live ------
    agent = make_staff(Role.CS_AGENT, "e2ecs")
    services.refund_approve(staff=agent.user, refund_no=refund.refund_no)
    expect(page.locator("[data-testid=refund-status]")).to_have_text("退款处理中")
    expect(page.locator("[data-testid=order-detail-status]")).to_have_text("退款处理中")
    shot(page, "detail-refund-processing-", scroll_to="top")
    assert Order.objects.get(pk=to_refund.pk).refunded_fen == 0  # sent, not yet confirmed by the gateway
    sent = gateway().deliver_due(prepay_id=to_refund.pay_params["sandboxTrade"], force=True)
    assert [c["status"] for c in sent if c["kind"] == "refund"] == ["delivered"]  # REFUND.SUCCESS to the server
    expect(page.locator("[data-testid=refund-status]")).to_have_text("退款成功")
    expect(page.locator("[data-testid=order-detail-status]")).to_have_text("部分退款")
    assert page.evaluate("window.__sameDocument") == "yes"
    shot(page, "detail-refunded-", scroll_to="top")
    refunded = Order.objects.get(pk=to_refund.pk)
    assert (refunded.status, refunded.paid_fen, refunded.refunded_fen) == ("partially_refunded", 8300, 4500)
    assert balanced(refunded)["received"] == 3800

    # --- the refund tab, 服务记录 ----------------------------------------------------------------
    page.go_back()
    page.click("[data-testid=order-tab-refund]")
    expect(rows).to_have_count(1)
    expect(rows.first.locator("[data-testid=order-status]")).to_have_text("部分退款")
    shot(page, "tab-refund-")
    page.goto(f"{url}/h5/#/pages/records/records")
    expect(page.locator("[data-testid=record-item]").filter(has_text="订单")).to_have_count(2)
    shot(page, "records-")

    # --- 我的处方: approved, but prescriptions cannot be paid online yet: nothing is ordered --------
    orders_before = Order.objects.count()
    page.goto(f"{url}/h5/#/pages/me/me")
    expect(page.locator("[data-testid=me-orders-entry]")).to_contain_text("我的订单")
    shot(page, "me-")
    page.click("[data-testid=me-prescriptions-entry]")
    item = page.locator("[data-testid=rx-item]")
    expect(item).to_have_count(1)
    expect(item.locator("[data-testid=rx-status]")).to_have_text("待支付")
    shot(page, "rx-list-")
    item.click()
    expect(page.locator("[data-testid=rx-line]")).to_have_count(2)
    expect(page.locator("[data-testid=rx-usage]").nth(1)).to_contain_text("每次 20mg")
    assert rx.expires_at is not None
    rx_total = sum(int(ln.unit_price_amount * ln.quantity) for ln in rx.lines.all())
    expires = rx.expires_at.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m-%d %H:%M")
    expect(page.locator("[data-testid=rx-validity]")).to_contain_text(expires)
    shot(page, "rx-detail-")
    # 取药方式: no address on file, so 到院自取; then 去支付 opens the pay sheet for the prescription's charge.
    expect(page.locator("[data-testid=rx-delivery-courier]")).to_contain_text("暂无收货地址")
    page.click("[data-testid=rx-delivery-pickup]")
    expect(page.locator("[data-testid=rx-delivery-note]")).to_contain_text("已选择到院自取")
    assert Prescription.objects.get(pk=rx.pk).delivery_method == "pickup"
    shot(page, "rx-delivery-")
    page.click("[data-testid=rx-pay]")
    expect(page.locator("[data-testid=pay-amount]")).to_have_text("¥" + f"{rx_total / 100:.2f}")
    page.click("[data-testid=pay-cancel]")
    # One order for it, unpaid; the prescription stays approved (paying is the patient's choice).
    assert Order.objects.count() == orders_before + 1
    assert Prescription.objects.get(pk=rx.pk).status == Prescription.Status.APPROVED

    # --- someone else's order and prescription: the same "not found" as a missing one ------------
    other = make_patient("13612340413", "钱多")
    theirs = _checkout(other, add_patient(other, "钱多"), "demo_tea_bag")
    page.goto(f"{url}/h5/#/pages/orders/detail?no={theirs.order_no}")
    expect(page.locator("[data-testid=state-empty]")).to_contain_text("订单不存在或不属于您的账号")
    expect(page.locator("[data-testid=state-empty]")).not_to_contain_text(theirs.title)
    shot(page, "order-not-found-")
    page.goto(f"{url}/h5/#/pages/prescriptions/detail?id={rx.pk + 1000}")
    expect(page.locator("[data-testid=state-empty]")).to_contain_text("处方不存在或不属于您和家人")
    assert page.errors == []


def test_pickup_parcel_followed_live(shop_server: str, patient_page: Any) -> None:
    """我的配送: a parcel to collect at the pharmacy, followed live from 待发货 to 待取件 to
    已取件; the code shown once is the one the pharmacist checks, a wrong one changes nothing."""
    page, url = patient_page, shop_server
    account = make_patient(PHONE_PARCEL, "孙丽")
    me = add_patient(account, "孙丽")
    register_source("e2e.parcel", can_ship=lambda source_id: ShipDecision(patient_id=me.pk, methods=("pickup",)))
    try:
        pharmacist = make_staff(Role.PHARMACIST, "e2eshipph")
        parcel = delivery.shipment_create(
            staff=pharmacist.user, source_kind="e2e.parcel", source_id="1", method="pickup"
        )
        patient_login(page, url, PHONE_PARCEL)
        page.goto(f"{url}/h5/#/pages/me/me")
        page.click("[data-testid=me-shipments-entry]")
        item = page.locator("[data-testid=shipment-item]")
        expect(item).to_have_count(1)
        expect(item.locator("[data-testid=shipment-status]")).to_have_text("待发货")
        shot(page, "shipments-")
        item.click()
        expect(page.locator("[data-testid=shipment-detail-status]")).to_have_text("待发货")
        expect(page.locator("[data-testid=pickup-get]")).to_have_count(0)  # nothing to collect yet
        page.evaluate("window.__sameDocument = 'yes'")

        delivery.shipment_ready(staff=pharmacist.user, shipment_id=parcel.pk)  # the pharmacy has it ready
        expect(page.locator("[data-testid=shipment-detail-status]")).to_have_text("待取件")
        page.click("[data-testid=pickup-get]")
        code_box = page.locator("[data-testid=pickup-code]")
        expect(code_box).to_have_text(re.compile(r"^\d{6}$"))
        code = code_box.inner_text()
        shot(page, "pickup-code-")
        with pytest.raises(DeliveryError):
            delivery.pickup_verify(staff=pharmacist.user, shipment_id=parcel.pk, code=f"{(int(code) + 1) % 10**6:06d}")
        assert Shipment.objects.get(pk=parcel.pk).status == Shipment.Status.READY_FOR_PICKUP

        delivery.pickup_verify(staff=pharmacist.user, shipment_id=parcel.pk, code=code)
        expect(page.locator("[data-testid=shipment-detail-status]")).to_have_text("已取件")
        expect(page.locator("[data-testid=pickup-code]")).to_have_count(0)
        assert page.evaluate("window.__sameDocument") == "yes"
        shot(page, "picked-up-")
        assert Shipment.objects.get(pk=parcel.pk).status == Shipment.Status.PICKED_UP_BY_PATIENT
        assert page.errors == []
    finally:
        unregister_source("e2e.parcel")
