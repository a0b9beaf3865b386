"""Chromium, the staff console's pharmacy and commerce views (issue 12):

- a doctor writes a prescription from the patient page's 处方 tab (a sixth drug and a
  controlled drug refused inline at the lines they concern), enrols a sandbox
  certificate, signs and submits; the pharmacist's open queue shows it live, the
  pharmacist rejects it with a reason; the doctor sees the reason live, revises and
  resubmits; the pharmacist approves;
- a refund request waits in the refund queue (one over the approval limit marked as
  needing a second approval), an agent approves the other, and the order drawer shows
  the refund settled and a balanced ledger; the reconciliation view highlights a
  difference with its kind in Chinese."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from apps.accounts.roles import Role
from apps.care_team.models import CareRelationship
from apps.care_team.services import relationship_open
from apps.commerce import services as commerce
from apps.commerce.models import LedgerEntry, Order, ReconciliationLine, ReconciliationReport, Refund
from apps.commerce.payments.base import reset_providers
from apps.commerce.selectors import ledger_balance
from apps.pharmacy import services as pharmacy
from apps.pharmacy.models import Prescription
from tests.conftest import make_patient, make_staff
from tests.e2e.conftest import SCREENSHOTS
from tests.e2e.helpers import CONSOLE_DESKTOP, console_login
from tests.pharmacy.conftest import add_patient, make_doctor
from tests.support.server import DaphneServer, free_port

pytestmark = pytest.mark.e2e

PIN = "246810"
NORMAL = [("氨氯地平", "AMLO-5", "5"), ("二甲双胍", "METF-05", "0.5"), ("阿托伐他汀", "ATOR-20", "20")]
NORMAL += [("奥美拉唑", "OMEP-20", "20"), ("氯雷他定", "LORA-10", "10"), ("阿司匹林", "ASPI-100", "100")]


def _shot(page: Any, name: str) -> None:
    """A named 1440x900 shot of the state under test (the helpers also shoot every navigation)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(400)  # Element Plus tags and drawers finish their entrance transitions
    page.screenshot(path=str(SCREENSHOTS / f"test_console_pharmacy-{name}.png"))


def _rows(page: Any) -> Any:
    return page.locator("[data-testid=rx-editor-lines] .el-table__body tr")


def _add_drug(page: Any, query: str, code: str, dose: str) -> None:
    search = page.locator("[data-testid=rx-drug-search] input")
    search.fill(query)
    page.locator(f"[data-testid=rx-drug-option-{code}]").click()
    row = _rows(page).last
    expect(row).to_contain_text(query)
    row.locator("input[data-testid=rx-line-dose]").fill(dose)


def _remove_last(page: Any) -> None:
    before = _rows(page).count()
    _rows(page).last.locator("[data-testid=rx-line-remove]").click()
    expect(_rows(page)).to_have_count(before - 1)


def test_prescribe_review_reject_revise_approve(live_server_url: str, browser: Any) -> None:
    doctor = make_doctor("e2erxdoc")
    pharmacist = make_staff(Role.PHARMACIST, "e2erxpharm")
    account = make_patient("13612340312", "周敏")
    me = add_patient(account, "周敏")
    relationship_open(staff=doctor.user, patient=me, reason=CareRelationship.Reason.CARE_PLAN)
    pharmacy.allergy_add(actor=doctor.user, patient_id=me.pk, allergen="青霉素", reaction="皮疹")

    # --- the pharmacist's queue is open (and empty) before anything is submitted ------------
    pctx = browser.new_context(**CONSOLE_DESKTOP)
    ph = pctx.new_page()
    ph_errors: list[str] = []
    ph.on("pageerror", lambda exc: ph_errors.append(str(exc)))
    console_login(ph, live_server_url, "e2erxpharm", pharmacist)
    ph.click("[data-testid=menu-pharmacy-review]")
    expect(ph.locator("[data-testid=review-empty]")).to_be_visible()

    # --- the doctor writes it from the patient page's 处方 tab ---------------------------------
    dctx = browser.new_context(**CONSOLE_DESKTOP)
    doc = dctx.new_page()
    doc_errors: list[str] = []
    doc.on("pageerror", lambda exc: doc_errors.append(str(exc)))
    console_login(doc, live_server_url, "e2erxdoc", doctor)
    doc.goto(f"{live_server_url}/console/#/patients/{me.pk}")
    expect(doc.locator("[data-testid=patient-name]")).to_have_text("周敏")
    doc.click("#tab-prescriptions")
    expect(doc.locator("[data-testid=rx-table]")).to_contain_text("尚未给该就诊人开具处方")
    doc.click("[data-testid=rx-new]")
    expect(doc.locator("[data-testid=rx-editor]")).to_contain_text("青霉素")  # the allergy, before prescribing
    for query, code, dose in NORMAL:
        _add_drug(doc, query, code, dose)
    doc.locator("input[data-testid=rx-diagnosis]").fill("原发性高血压；2型糖尿病")
    doc.locator("input[data-testid=rx-icd10]").fill("I10")

    # A sixth drug: refused by the server, shown above the lines; nothing saved.
    doc.click("[data-testid=rx-save]")
    expect(doc.locator("[data-testid=rx-error-lines]")).to_contain_text("不得超过5种药品")
    _shot(doc, "console-rx-sixth-drug")
    assert not Prescription.objects.filter(patient=me).exists()

    # A controlled drug (by its formulary code: the catalogue search never offers it): refused at its line.
    _remove_last(doc)
    doc.locator("input[data-testid=rx-code-input]").fill("DIAZ-25")
    doc.click("[data-testid=rx-code-add]")
    row = _rows(doc).last
    row.locator("input[data-testid=rx-line-dose]").fill("2.5")
    row.locator("input[data-testid=rx-line-quantity]").fill("1")
    doc.click("[data-testid=rx-save]")
    expect(row.locator("[data-testid=rx-line-error]")).to_contain_text("地西泮片属于")
    expect(row.locator("[data-testid=rx-line-error]")).to_contain_text("互联网医院不得开具")
    _shot(doc, "console-rx-controlled")
    assert not Prescription.objects.filter(patient=me).exists()

    # Down to two drugs; enrol a sandbox certificate, sign with the PIN, submit.
    while _rows(doc).count() > 2:
        _remove_last(doc)
    doc.click("[data-testid=rx-sign-open]")
    expect(doc.locator("[data-testid=sign-dialog]")).to_contain_text("您还没有电子签名证书")
    doc.locator("input[data-testid=enrol-pin]").fill(PIN)
    doc.locator("input[data-testid=enrol-pin2]").fill(PIN)
    doc.click("[data-testid=enrol-submit]")
    doc.locator("input[data-testid=sign-pin]").fill("111111")  # a wrong PIN first
    doc.click("[data-testid=sign-submit]")
    expect(doc.locator("[data-testid=sign-dialog]")).to_contain_text("签名密码错误")
    doc.locator("input[data-testid=sign-pin]").fill(PIN)
    doc.click("[data-testid=sign-submit]")
    expect(doc.locator("[data-testid=rx-row-status]")).to_have_text("待药师审核")
    rx = Prescription.objects.get(patient=me)
    assert rx.status == Prescription.Status.SUBMITTED and rx.lines.count() == 2

    # --- the pharmacist sees it appear without reloading, rejects it with a reason -------------
    item = ph.locator(f"[data-testid=review-item][data-number='{rx.number}']")
    expect(item).to_be_visible()
    expect(ph.locator("[data-testid=rx-allergies]")).to_contain_text("青霉素")
    expect(ph.locator("[data-testid=rx-signature]")).to_contain_text("电子签名有效")
    expect(ph.locator("[data-testid=rx-lines]")).to_contain_text("每日一次")
    expect(ph.locator("[data-testid=rx-diagnosis]")).to_contain_text("原发性高血压")
    _shot(ph, "console-review-queue")
    ph.click("[data-testid=review-reject-open]")
    ph.click("[data-testid=reject-submit]")  # no reason: refused in the dialog
    expect(ph.locator("[data-testid=reject-dialog]")).to_contain_text("请选择或填写驳回原因")
    ph.locator("[data-testid=reject-presets] .el-checkbox", has_text="用法用量不适宜").click()
    ph.locator("textarea[data-testid=reject-text]").fill("二甲双胍请改为每日两次")
    _shot(ph, "console-review-reject")
    ph.click("[data-testid=reject-submit]")
    expect(ph.locator("[data-testid=review-empty]")).to_be_visible()
    rx.refresh_from_db()
    assert rx.status == Prescription.Status.REJECTED

    # --- the doctor sees the reason live, revises and resubmits ---------------------------------
    expect(doc.locator("[data-testid=rx-row-status]")).to_have_text("审核未通过")
    expect(doc.locator("[data-testid=rx-row-reason]")).to_contain_text("用法用量不适宜；二甲双胍请改为每日两次")
    doc.click("[data-testid=rx-row-revise]")
    expect(doc.locator("[data-testid=rx-editor-reject]")).to_contain_text("二甲双胍请改为每日两次")
    metformin = _rows(doc).filter(has_text="二甲双胍")
    metformin.locator("[data-testid=rx-line-frequency]").click()
    doc.locator(".el-select-dropdown__item:visible", has_text="每日两次").click()
    _shot(doc, "console-rx-revise")
    doc.click("[data-testid=rx-sign-open]")
    doc.locator("input[data-testid=sign-pin]").fill(PIN)
    doc.click("[data-testid=sign-submit]")
    expect(doc.locator("[data-testid=rx-row-status]")).to_have_text("待药师审核")

    # --- the pharmacist approves the new version (it reappears live) -----------------------------
    expect(item).to_be_visible()
    expect(item).to_contain_text("修改后重提")
    expect(ph.locator("[data-testid=rx-lines]")).to_contain_text("每日两次")
    ph.click("[data-testid=review-approve]")
    expect(ph.locator("[data-testid=review-empty]")).to_be_visible()
    rx.refresh_from_db()
    assert rx.status == Prescription.Status.APPROVED and rx.version == 2
    expect(doc.locator("[data-testid=rx-row-status]")).to_have_text("审核通过")

    # The doctor's own list (the to-do's route) shows the same, with the rejected filter empty now.
    doc.click("[data-testid=menu-pharmacy-prescriptions]")
    expect(doc.locator("[data-testid=rx-prescriptions-page] [data-testid=rx-row-number]")).to_have_text(rx.number)
    assert ph_errors == [] and doc_errors == []
    pctx.close()
    dctx.close()


def test_child_guardian_and_allergy_refused_inline(live_server_url: str, browser: Any) -> None:
    """A child under 6: the writer asks for the guardian, and the server's refusals land at
    the guardian field and at the allergic drug's line; nothing is saved until both are fixed."""
    doctor = make_doctor("e2erxkid")
    account = make_patient("13612340314", "郑洁")
    today = dt.date.today()
    child = add_patient(account, "郑小宝", relation="child", birth=today.replace(year=today.year - 3))
    relationship_open(staff=doctor.user, patient=child, reason=CareRelationship.Reason.CARE_PLAN)
    pharmacy.allergy_add(actor=doctor.user, patient_id=child.pk, allergen="青霉素")

    ctx = browser.new_context(**CONSOLE_DESKTOP)
    doc = ctx.new_page()
    errors: list[str] = []
    doc.on("pageerror", lambda exc: errors.append(str(exc)))
    console_login(doc, live_server_url, "e2erxkid", doctor)
    doc.goto(f"{live_server_url}/console/#/patients/{child.pk}")
    doc.click("#tab-prescriptions")
    doc.click("[data-testid=rx-new]")
    _add_drug(doc, "阿莫西林", "AMOX-025", "0.125")
    doc.locator("input[data-testid=rx-diagnosis]").fill("急性扁桃体炎")
    doc.locator("input[data-testid=rx-guardian-name]").fill("")
    doc.click("[data-testid=rx-save]")
    expect(doc.locator("[data-testid=rx-editor]")).to_contain_text("须登记监护人姓名及关系")
    assert not Prescription.objects.filter(patient=child).exists()

    doc.locator("input[data-testid=rx-guardian-name]").fill("郑洁")
    doc.locator("[data-testid=rx-guardian-relation]").click()
    doc.locator(".el-select-dropdown__item:visible", has_text="母亲").click()
    doc.click("[data-testid=rx-save]")
    line_error = _rows(doc).first.locator("[data-testid=rx-line-error]")
    expect(line_error).to_contain_text("过敏")
    expect(line_error).to_contain_text("阿莫西林")
    _shot(doc, "console-rx-child-allergy")
    assert not Prescription.objects.filter(patient=child).exists()

    _remove_last(doc)
    _add_drug(doc, "氯雷他定", "LORA-10", "5")
    doc.click("[data-testid=rx-save]")
    expect(doc.locator("[data-testid=rx-row-status]")).to_have_text("草稿")
    rx = Prescription.objects.get(patient=child)
    assert rx.status == Prescription.Status.DRAFT and rx.guardian_name == "郑洁"
    assert errors == []
    ctx.close()


# --- refunds and the order detail ---------------------------------------------------------------


@pytest.fixture
def shop_url(transactional_db: Any, settings: Any, tmp_path: Any) -> Iterator[str]:
    """The live server, told its own address so the sandbox gateway's refund notices reach it;
    the gateway's state in a directory of this test only (no callback outlives the server)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    gateway_dir = tmp_path / "payments_sandbox"
    settings.PAYMENTS_SANDBOX_DIR = gateway_dir
    server = DaphneServer(
        port=port,
        PAYMENTS_PUBLIC_BASE_URL=url,
        PAYMENTS_SANDBOX_DIR=str(gateway_dir),
        MEDIA_EMBEDDED="1",
        MEDIA_RTMP_PORT="0",
        MEDIA_HTTP_PORT="0",
    ).start()
    # This process's checkouts name the same server for their payment notices, delivered at once.
    settings.PAYMENTS_PUBLIC_BASE_URL = url
    settings.PAYMENTS_SANDBOX_DELIVERY = "inline"
    notify = f"{url}/api/v1/commerce/notify/sandbox/refund"
    sandbox = {**settings.PAYMENT_PROVIDERS["sandbox"], "refund_notify_url": notify}
    settings.PAYMENT_PROVIDERS = {**settings.PAYMENT_PROVIDERS, "sandbox": sandbox}
    reset_providers()
    try:
        yield url
    finally:
        server.stop()
        reset_providers()


def _paid_order(account: Any, patient: Any, quantity: int) -> Order:
    from apps.commerce.payments.sandbox import gateway

    order = commerce.order_checkout(
        payer=account.user,
        patient_id=patient.pk,
        lines=[commerce.CheckoutLine(kind="demo_consultation", ref="demo", quantity=quantity)],
        client_key=secrets.token_hex(8),
        channel="sandbox",
    )
    gateway().pay(order.pay_params["sandboxTrade"], order.pay_params)
    notice = commerce.provider_for("sandbox").query(order.order_no)
    assert notice is not None
    commerce.payment_notice_apply(notice)
    order.refresh_from_db()
    assert order.paid_fen == order.payable_fen > 0
    return order


def test_refund_queue_approve_and_order_ledger(shop_url: str, browser: Any) -> None:
    agent = make_staff(Role.CS_AGENT, "e2ecsagent")
    admin = make_staff(Role.SYSADMIN, "e2ecsadmin")
    account = make_patient("13612340313", "吴芳")
    patient = add_patient(account, "吴芳")
    small = _paid_order(account, patient, 1)  # ¥50.00
    large = _paid_order(account, patient, 11)  # ¥550.00: over the single-approval limit
    commerce.refund_request(user=account.user, order_no=small.order_no, reason="医生临时停诊，未能问诊")
    commerce.refund_request(user=account.user, order_no=large.order_no, reason="重复购买")
    # A seeded reconciliation difference (the bill says more than the ledger for the small order).
    report = ReconciliationReport.objects.create(
        provider="sandbox", day=dt.date.today() - dt.timedelta(days=2), bill_lines=2, ledger_lines=2, differences=1
    )
    ReconciliationLine.objects.create(
        report=report,
        problem=ReconciliationLine.Problem.AMOUNT_MISMATCH,
        kind="charge",
        order_no=small.order_no,
        reference="4200000000000000001",
        local_fen=5000,
        provider_fen=5100,
    )

    ctx = browser.new_context(**CONSOLE_DESKTOP)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    console_login(page, shop_url, "e2ecsagent", agent)
    expect(page.locator("[data-testid=menu-badge-commerce-refunds]")).to_contain_text("2")
    page.click("[data-testid=workbench-todo][data-kind='commerce.refunds_to_approve']")  # the card opens the queue
    table = page.locator("[data-testid=refunds-table]")
    expect(table).to_contain_text(small.order_no)
    expect(table).to_contain_text("¥50.00")
    big_row = table.locator(".el-table__body tr", has_text=large.order_no).first
    expect(big_row.locator("[data-testid=refund-second]")).to_have_text("超过限额，需复核")
    _shot(page, "console-refunds")

    small_row = table.locator(".el-table__body tr", has_text=small.order_no).first
    small_row.locator("[data-testid=refund-approve]").click()
    page.locator(".el-message-box__btns .el-button--primary").click()
    expect(table).not_to_contain_text(small.order_no)
    refund = Refund.objects.get(order=small)
    for _ in range(100):  # the sandbox gateway's refund notice settles it
        refund.refresh_from_db()
        if refund.status == Refund.Status.SUCCEEDED:
            break
        page.wait_for_timeout(100)
    assert refund.status == Refund.Status.SUCCEEDED
    assert Refund.objects.get(order=large).status == Refund.Status.REQUESTED  # untouched

    # The order's drawer: the refund, the payment and a balanced ledger.
    page.click("[data-testid=menu-commerce-orders]")
    page.locator("input[data-testid=orders-q]").fill(small.order_no)
    page.click("[data-testid=orders-search]")
    page.locator("[data-testid=orders-row-no]", has_text=small.order_no).click()
    drawer = page.locator("[data-testid=order-drawer]")
    expect(drawer.locator("[data-testid=order-status]")).to_have_text("已退款")
    expect(drawer.locator("[data-testid=order-refund-status]")).to_have_text("退款成功")
    expect(drawer.locator("[data-testid=order-refunds]")).to_contain_text("¥50.00")
    expect(drawer.locator("[data-testid=order-ledger-check]")).to_contain_text("账目平衡")
    expect(drawer.locator("[data-testid=order-ledger]")).to_contain_text("退款")
    _shot(page, "console-order-drawer")
    small.refresh_from_db()
    sums = ledger_balance(small)
    assert sums["balance"] == 0 and sums["received"] == 0
    assert LedgerEntry.objects.filter(order=small, kind="refund").count() == 1

    # The large one: the agent's approval is the first of two; it leaves the agent's queue.
    page.keyboard.press("Escape")  # the drawer closes
    expect(drawer).to_be_hidden()
    page.click("[data-testid=menu-commerce-refunds]")
    big_row = table.locator(".el-table__body tr", has_text=large.order_no).first
    big_row.locator("[data-testid=refund-approve]").click()
    expect(page.locator(".el-message-box")).to_contain_text("还须另一角色复核")
    page.locator(".el-message-box__btns .el-button--primary").click()
    expect(table).to_contain_text("暂无待您审核的退款申请")
    big = Refund.objects.get(order=large)
    assert big.status == Refund.Status.APPROVED and big.approved_by_id == agent.user.pk
    assert LedgerEntry.objects.filter(order=large, kind="refund").count() == 0  # nothing returned yet
    assert errors == []
    ctx.close()

    # The reconciliation reports (a system administrator): the seeded difference, in Chinese.
    actx = browser.new_context(**CONSOLE_DESKTOP)
    adm = actx.new_page()
    console_login(adm, shop_url, "e2ecsadmin", admin)
    # The second approval, by another role.
    adm.click("[data-testid=menu-commerce-refunds]")
    row = adm.locator("[data-testid=refunds-table] .el-table__body tr", has_text=large.order_no).first
    expect(row.locator("[data-testid=refund-second]")).to_have_text("超过限额，已有一人初审")
    _shot(adm, "console-refund-second")
    row.locator("[data-testid=refund-approve]").click()
    adm.locator(".el-message-box__btns .el-button--primary").click()
    expect(adm.locator("[data-testid=refunds-table]")).to_contain_text("暂无待您审核的退款申请")
    big.refresh_from_db()
    assert big.status in (Refund.Status.PROCESSING, Refund.Status.SUCCEEDED)
    assert big.second_approved_by_id == admin.user.pk
    adm.click("[data-testid=menu-commerce-reconciliation]")
    adm.locator("[data-testid=recon-reports] .el-table__body tr").first.click()
    expect(adm.locator("[data-testid=recon-problem]")).to_have_text("金额不一致")
    expect(adm.locator("[data-testid=recon-lines]")).to_contain_text("支付")
    expect(adm.locator("[data-testid=recon-lines]")).to_contain_text("¥51.00")
    _shot(adm, "console-reconciliation")
    actx.close()


# --- shipments ------------------------------------------------------------------------------------


def test_shipments_book_and_track(live_server_url: str, browser: Any) -> None:
    """The pharmacist's 待预约快递 card opens the shipments page on that filter; the drawer
    books the sandbox courier, and its next step shows in the route in Beijing time."""
    from apps.accounts.models import ConsentRecord
    from apps.accounts.services import consent_set
    from apps.delivery import services as delivery
    from apps.delivery.models import Shipment
    from tests.delivery.conftest import address_data

    pharmacist = make_staff(Role.PHARMACIST, "e2eshippharm")
    account = make_patient("13612340315", "冯静")
    me = add_patient(account, "冯静")
    consent_set(user=account.user, purpose=ConsentRecord.Purpose.COURIER_SHARING, granted=True)
    delivery.address_create(user=account.user, data=address_data(recipient_name="冯静", is_default=True))
    shipment = delivery.shipment_create(
        staff=pharmacist.user, source_kind="delivery.demo", source_id=f"{me.pk}-1", method="courier"
    )

    ctx = browser.new_context(**CONSOLE_DESKTOP)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    console_login(page, live_server_url, "e2eshippharm", pharmacist)
    expect(page.locator("[data-testid=menu-badge-delivery-shipments]")).to_contain_text("1")
    page.click("[data-testid=workbench-todo][data-kind='delivery.to_book']")
    row = page.locator("[data-testid=shipments-table] .el-table__body tr", has_text=shipment.number)
    expect(row.locator("[data-testid=shipment-status]")).to_have_text("待发货")
    expect(row).to_contain_text("快递配送")
    row.click()
    drawer = page.locator("[data-testid=shipment-drawer]")
    expect(drawer).to_contain_text("天河区")
    drawer.locator(".el-select").first.click()
    page.locator(".el-select-dropdown__item:visible", has_text="沙箱快递").click()
    drawer.locator("[data-testid=shipment-book]").click()
    expect(drawer).to_contain_text("运单号")
    shipment.refresh_from_db()
    assert shipment.status == Shipment.Status.BOOKED and shipment.waybill_no
    drawer.locator("[data-testid=shipment-sandbox-next]").click()
    expect(drawer.locator("[data-testid=shipment-events]")).to_contain_text("快递员已接单")
    _shot(page, "console-shipment-drawer")
    shipment.refresh_from_db()
    assert shipment.status == Shipment.Status.ACCEPTED
    assert errors == []
    ctx.close()
