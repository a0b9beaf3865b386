"""Chromium, the console's doctor workstation for consultations (issue 13), built to
docs/consultations-api.md:

- a doctor goes online; a patient's paid booking appears live on the board; the doctor
  reviews the uploaded prior record, confirms 复诊, fails the identity step-up once
  (nothing accepted) and passes it; calls the patient in; the visit room shows the
  chat beside the video and the countdown; the record is saved as it is typed; a
  prescription is written from the visit (sourced to it) and a scale assigned; a third
  participant is invited (the code shown once, with its expiry), joins and is removed;
  the visit is extended once (billed) and ended; the record is signed with the CA PIN;
- a department-queue visit is taken, its uploaded record rejected (accepting is then
  impossible), and the visit terminated with a reason from the fixed list: refused
  without a reason (nothing changed), then terminated with a full refund.

Patients book and pay over the HTTP API and the sandbox gateway, as the patient app
does; everything the doctor does goes through the console."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from apps.accounts.services import token_issue
from apps.commerce.models import Refund
from apps.consultations.models import Department, DoctorProfile, Invitation, PriorRecord, Slot, Visit, VisitRecord
from apps.pharmacy.models import Prescription
from apps.psych.models import Assignment
from tests.conftest import STRONG, add_patient, make_patient
from tests.e2e.conftest import SCREENSHOTS
from tests.e2e.helpers import CONSOLE_DESKTOP, console_login
from tests.e2e.test_patient_orders import start_shop_server
from tests.pharmacy.conftest import enrol, make_doctor

pytestmark = pytest.mark.e2e

PIN = "246810"
PRICE_FEN = 5000
ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def _shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(400)  # dialogs and tags finish their entrance transitions
    page.screenshot(path=str(SCREENSHOTS / f"test_consult_console-{name}.png"))


@pytest.fixture
def consult_server(transactional_db: Any, settings: Any, tmp_path: Path) -> Iterator[str]:
    # The sandbox gateway shared with this process (the patients pay as the app does).
    yield from start_shop_server(settings, tmp_path)


def _call(method: str, url: str, token: str = "", body: dict[str, Any] | None = None) -> Any:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body or {}).encode() if method != "GET" else None
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    with urllib.request.urlopen(req, timeout=30) as answer:
        raw = answer.read()
    return json.loads(raw) if raw else {}


def _book_and_pay(url: str, token: str, booking: dict[str, Any]) -> Visit:
    """POST consultations/visits, then pay its order on the sandbox sheet; the paid
    visit (waiting) once commerce has heard from the gateway."""
    out = _call("POST", f"{url}/api/v1/consultations/visits", token, booking)
    order_no = out.get("order_no") or out.get("visit", {}).get("order_no")
    assert order_no, out
    from apps.commerce.payments.sandbox import gateway

    order = _call("POST", f"{url}/api/v1/commerce/orders/{order_no}/pay", token)
    gateway().pay(order["pay_params"]["sandboxTrade"], order["pay_params"])
    for _ in range(100):
        visit = Visit.objects.filter(order_no=order_no).first()
        if visit is not None and visit.status == Visit.Status.WAITING:
            return visit
        time.sleep(0.1)
    raise AssertionError("the visit was not paid")


def _until(check: Any, what: str, tries: int = 100) -> None:
    for _ in range(tries):
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(what)


def _no_raw_text(page: Any, *secrets: str) -> None:
    """No ISO timestamps and none of the given internal ids in the page's visible text."""
    text = page.locator("body").inner_text()
    assert not ISO_TIME.search(text), ISO_TIME.search(text)
    for s in secrets:
        assert s not in text, s


def _clinic() -> tuple[Any, DoctorProfile, Department]:
    doctor = make_doctor("e2econsultdoc")
    dept = Department.objects.create(code="cardio", name="心内科")
    profile = DoctorProfile.objects.create(
        user=doctor.user,
        department=dept,
        title=DoctorProfile.Title.ATTENDING,
        price_video_fen=PRICE_FEN,
        price_text_fen=3000,
    )
    return doctor, profile, dept


def _upload(patient: Any, account: Any, diagnosis: str) -> PriorRecord:
    return PriorRecord.objects.create(
        patient=patient,
        source=PriorRecord.Source.UPLOAD,
        hospital="市第一人民医院",
        visit_date=dt.date(2026, 10, 12),
        icd10_code="I10",
        diagnosis=diagnosis,
        summary="规律服用氨氯地平，血压控制一般",
        review=PriorRecord.Review.PENDING,
        uploaded_by=account.user,
    )


def test_accept_call_record_invite_extend_end_sign(consult_server: str, browser: Any) -> None:
    url = consult_server
    doctor, profile, _dept = _clinic()
    enrol(doctor, PIN)
    account = make_patient("13612340413", "周敏")
    me = add_patient(account, "周敏")
    prior = _upload(me, account, "原发性高血压")
    now = timezone.now()
    slot = Slot.objects.create(
        doctor=profile,
        kind="video",
        starts_at=now + dt.timedelta(minutes=2),
        ends_at=now + dt.timedelta(minutes=32),
        capacity=3,
    )

    ctx = browser.new_context(**CONSOLE_DESKTOP)
    doc = ctx.new_page()
    errors: list[str] = []
    doc.on("pageerror", lambda exc: errors.append(str(exc)))
    console_login(doc, url, "e2econsultdoc", doctor)
    doc.click("[data-testid=menu-consult-workbench]")
    expect(doc.locator("[data-testid=consult-board-waiting-empty]")).to_be_visible()
    expect(doc.locator("[data-testid=consult-queue]")).to_contain_text("科室排队中暂无患者")
    expect(doc.locator("[data-testid=consult-offline-hint]")).to_be_visible()
    _shot(doc, "workbench-empty")

    # --- online -------------------------------------------------------------------------------
    doc.click("[data-testid=consult-online]")
    _until(lambda: DoctorProfile.objects.get(pk=profile.pk).is_online, "the doctor did not go online")
    expect(doc.locator("[data-testid=consult-offline-hint]")).to_have_count(0)

    # --- a paid booking appears live ---------------------------------------------------------------
    token = token_issue(user=account.user).raw
    visit = _book_and_pay(
        url,
        token,
        {
            "patient_id": me.pk,
            "kind": "video",
            "doctor_id": profile.pk,
            "slot_id": slot.pk,
            "chief_complaint": "高血压复诊，近一周晨起头晕",
            "prior_record_id": prior.public_id,
        },
    )
    card = doc.locator("[data-testid=consult-board-waiting] [data-testid=consult-visit-card]")
    expect(card).to_have_count(1)
    expect(card).to_contain_text("高血压复诊")
    expect(doc.locator("[data-testid=consult-today-waiting]")).to_have_text("1")
    _no_raw_text(doc, visit.public_id)

    # --- accept: the upload reviewed, 复诊 confirmed, a wrong password refused ---------------------
    card.locator("[data-testid=consult-accept-open]").click()
    dialog = doc.locator("[data-testid=consult-accept-dialog]")
    expect(dialog.locator("[data-testid=consult-prior-diagnosis]")).to_have_text("原发性高血压")
    expect(dialog.locator("[data-testid=consult-accept-submit]")).to_be_disabled()  # the upload is not reviewed yet
    _shot(doc, "accept-review")
    dialog.locator("[data-testid=consult-prior-accept]").click()
    expect(dialog.locator("[data-testid=consult-prior-review]")).to_have_text("医生已确认")
    assert PriorRecord.objects.get(pk=prior.pk).review == PriorRecord.Review.ACCEPTED
    dialog.locator("[data-testid=consult-accept-followup]").click()
    dialog.locator("input[data-testid=consult-stepup-input]").fill("not-my-password")
    dialog.locator("[data-testid=consult-accept-submit]").click()
    expect(dialog).to_contain_text("身份验证未通过")
    visit.refresh_from_db()
    assert visit.status == Visit.Status.WAITING and visit.accepted_at is None
    dialog.locator("input[data-testid=consult-stepup-input]").fill(STRONG)
    dialog.locator("[data-testid=consult-accept-submit]").click()
    expect(dialog).to_be_hidden()
    visit.refresh_from_db()
    assert visit.status == Visit.Status.ACCEPTED
    assert visit.step_up_at is not None and visit.followup_confirmed_at is not None
    # Accepted, not yet called in: still in the 候诊 column, now with 叫号.
    moved = doc.locator("[data-testid=consult-board-waiting] [data-testid=consult-visit-card]")
    expect(moved.locator("[data-testid=consult-call]")).to_have_count(1)

    # --- call in: the room, the chat beside the video, the countdown -------------------------------
    moved.locator("[data-testid=consult-call]").click()
    expect(doc.locator("[data-testid=consult-room]")).to_have_attribute("data-status", "in_progress")
    visit.refresh_from_db()
    assert visit.status == Visit.Status.IN_PROGRESS and visit.conversation_id
    expect(doc.locator("[data-testid=chat-room]")).to_be_visible()
    expect(doc.locator("[data-testid=consult-room-video]")).to_be_visible()
    expect(doc.locator("[data-testid=consult-room-video-idle]")).to_have_count(0)  # the video component, not the hint
    expect(doc.locator("[data-testid=consult-countdown-clock]")).to_have_text(re.compile(r"^\d{2}:\d{2}$"))
    _shot(doc, "room")

    # --- the record, saved as it is typed ----------------------------------------------------------
    doc.locator("textarea[data-testid=consult-record-present]").fill("一周来晨起头晕，家中自测血压150/95mmHg")
    doc.locator("input[data-testid=consult-record-icd10]").fill("i10")
    doc.locator("input[data-testid=consult-record-diagnosis]").fill("原发性高血压")
    doc.locator("textarea[data-testid=consult-record-advice]").fill("低盐饮食，继续服药，两周后复诊")
    doc.locator("textarea[data-testid=consult-record-notes]").fill("依从性一般")
    expect(doc.locator("[data-testid=consult-record-save-state]")).to_contain_text("已自动保存", timeout=10000)

    def saved() -> bool:
        rec = VisitRecord.objects.filter(visit=visit).first()
        return rec is not None and (rec.icd10_code, rec.diagnosis, rec.notes) == ("I10", "原发性高血压", "依从性一般")

    _until(saved, "the record was not saved as it was typed")
    assert VisitRecord.objects.get(visit=visit).signed_at is None

    # --- prescribe from the visit (the pharmacy writer, sourced to this visit) and assign a scale ---
    doc.click("#tab-rx")
    doc.click("[data-testid=consult-rx-new]")
    drawer = doc.locator("[data-testid=consult-rx-drawer]")
    drawer.locator("[data-testid=rx-drug-search] input").fill("氨氯地平")
    doc.locator("[data-testid=rx-drug-option-AMLO-5]").click()
    drawer.locator("input[data-testid=rx-line-dose]").fill("5")
    drawer.locator("input[data-testid=rx-diagnosis]").fill("原发性高血压")
    drawer.locator("input[data-testid=rx-icd10]").fill("I10")
    drawer.locator("[data-testid=rx-save]").click()
    _until(lambda: Prescription.objects.filter(patient=me).exists(), "the prescription was not saved")
    rx = Prescription.objects.get(patient=me)
    assert (rx.source_type, rx.source_id, rx.status) == ("consultation", visit.public_id, Prescription.Status.DRAFT)
    drawer.get_by_role("button", name="取消").click()
    expect(drawer).to_be_hidden()

    doc.click("#tab-scale")
    doc.click("[data-testid=consult-scale-assign-open]")
    doc.click("[data-testid=psych-scale-PHQ-9]")
    doc.click("[data-testid=psych-assign-submit]")
    expect(doc.locator("[data-testid=consult-scale-table]")).to_contain_text("PHQ-9")
    assert Assignment.objects.filter(patient=me, scale__code="PHQ-9").count() == 1

    # --- a third participant: the code once, with its expiry ---------------------------------------
    doc.click("#tab-people")
    doc.click("[data-testid=consult-invite-open]")
    invite = doc.locator("[data-testid=consult-invite-dialog]")
    invite.locator("[data-testid=consult-invite-role-family]").click()
    invite.locator("[data-testid=consult-invite-submit]").click()
    expect(invite.locator("[data-testid=consult-invite-code]")).to_have_text(re.compile(r"\S{4,}"))
    expect(invite.locator("[data-testid=consult-invite-expiry]")).to_contain_text("前有效")
    inv = Invitation.objects.get(visit=visit)
    assert inv.status == Invitation.Status.PENDING and inv.role == Invitation.Role.FAMILY
    _shot(doc, "invite-code")
    code = invite.locator("[data-testid=consult-invite-code]").inner_text().strip()
    invite.get_by_role("button", name="我已记下，关闭").click()

    # The family member redeems it (as the patient app does); the doctor sees them and removes them.
    family = make_patient("13612340415", "周父")
    _call("POST", f"{url}/api/v1/consultations/invitations/redeem", token_issue(user=family.user).raw, {"code": code})
    doc.click("[data-testid=consult-participants-refresh]")
    joined = doc.locator("[data-testid=consult-participants-table] .el-table__body tr").filter(has_text="家属")
    expect(joined).to_have_count(1)
    joined.locator("[data-testid=consult-participant-remove]").click()
    doc.locator(".el-message-box").get_by_role("button", name="移出").click()
    expect(joined).to_have_count(0)
    assert Invitation.objects.get(pk=inv.pk).status == Invitation.Status.REMOVED

    # --- extend once (billed), then end ------------------------------------------------------------
    doc.click("[data-testid=consult-extend]")
    expect(doc.locator(".el-message-box")).to_contain_text("计费")
    doc.locator(".el-message-box").get_by_role("button", name="确定延长（计费）").click()
    expect(doc.locator("[data-testid=consult-countdown-extended]")).to_be_visible()
    expect(doc.locator("[data-testid=consult-extend]")).to_have_count(0)

    doc.click("[data-testid=consult-end]")
    doc.locator(".el-message-box").get_by_role("button", name="结束问诊").click()
    expect(doc.locator("[data-testid=consult-room]")).to_have_attribute("data-status", "ended")
    visit.refresh_from_db()
    assert visit.status == Visit.Status.ENDED

    # --- sign the record with the CA PIN (a wrong one first: nothing signed) -----------------------
    doc.click("#tab-record")
    doc.click("[data-testid=consult-record-sign-open]")
    sign = doc.locator("[data-testid=sign-dialog]")
    sign.locator("input[data-testid=sign-pin]").fill("111111")
    sign.locator("[data-testid=sign-submit]").click()
    expect(sign).to_contain_text("签名密码错误")
    assert VisitRecord.objects.get(visit=visit).signed_at is None
    sign.locator("input[data-testid=sign-pin]").fill(PIN)
    sign.locator("[data-testid=sign-submit]").click()
    expect(doc.locator("[data-testid=consult-record-signed]")).to_be_visible()
    assert VisitRecord.objects.get(visit=visit).signed_at is not None
    _shot(doc, "signed")
    _no_raw_text(doc, visit.public_id)
    assert not errors, errors
    ctx.close()


def test_take_reject_and_terminate_with_full_refund(consult_server: str, browser: Any) -> None:
    url = consult_server
    doctor, profile, dept = _clinic()
    DoctorProfile.objects.filter(pk=profile.pk).update(is_online=True)
    account = make_patient("13612340414", "吴刚")
    me = add_patient(account, "吴刚")
    prior = _upload(me, account, "腰痛")
    token = token_issue(user=account.user).raw
    visit = _book_and_pay(
        url,
        token,
        {
            "patient_id": me.pk,
            "kind": "video",
            "department": dept.code,
            "chief_complaint": "第一次胸痛，想咨询",
            "prior_record_id": prior.public_id,
        },
    )
    assert visit.doctor_id is None

    ctx = browser.new_context(**CONSOLE_DESKTOP)
    doc = ctx.new_page()
    errors: list[str] = []
    doc.on("pageerror", lambda exc: errors.append(str(exc)))
    console_login(doc, url, "e2econsultdoc", doctor)
    doc.click("[data-testid=menu-consult-workbench]")

    # --- take it from the department queue ---------------------------------------------------------
    queue = doc.locator("[data-testid=consult-queue]")
    expect(queue).to_contain_text("第一次胸痛")
    queue.locator("[data-testid=consult-queue-take]").click()
    card = doc.locator("[data-testid=consult-board-waiting] [data-testid=consult-visit-card]")
    expect(card).to_have_count(1)
    visit.refresh_from_db()
    assert visit.doctor_id == profile.pk

    # --- the upload does not support a follow-up: rejected, accepting is impossible ----------------
    card.locator("[data-testid=consult-accept-open]").click()
    dialog = doc.locator("[data-testid=consult-accept-dialog]")
    dialog.locator("[data-testid=consult-prior-reject]").click()
    expect(dialog.locator("[data-testid=consult-prior-error]")).to_contain_text("请填写原因")  # a reason first
    assert PriorRecord.objects.get(pk=prior.pk).review == PriorRecord.Review.PENDING
    dialog.locator("input[data-testid=consult-prior-note]").fill("既往诊断与本次主诉无关")
    dialog.locator("[data-testid=consult-prior-reject]").click()
    expect(dialog.locator("[data-testid=consult-prior-review]")).to_have_text("医生未采纳")
    expect(dialog.locator("[data-testid=consult-accept-submit]")).to_be_disabled()

    # --- terminate: the warning, refused without a reason, then a full refund ----------------------
    dialog.locator("[data-testid=consult-accept-terminate]").click()
    term = doc.locator("[data-testid=consult-terminate-dialog]")
    expect(term.locator("[data-testid=consult-terminate-warning]")).to_contain_text("全额退款")
    expect(term.locator("[data-testid=consult-terminate-warning]")).to_contain_text("¥50.00")
    expect(term.locator("[data-testid=consult-terminate-warning]")).to_contain_text("线下就诊")
    term.locator("[data-testid=consult-terminate-submit]").click()
    expect(term).to_contain_text("请选择终止原因")
    visit.refresh_from_db()
    assert visit.status == Visit.Status.WAITING
    assert not Refund.objects.filter(order__order_no=visit.order_no).exists()
    _shot(doc, "terminate")

    term.locator("[data-testid=consult-terminate-reason]").click()
    doc.locator("[data-testid=consult-terminate-reason-first_visit]").click()
    term.locator("textarea[data-testid=consult-terminate-note]").fill("请到心内科门诊面诊并做心电图")
    term.locator("[data-testid=consult-terminate-submit]").click()
    expect(term).to_be_hidden()
    visit.refresh_from_db()
    assert visit.status == Visit.Status.TERMINATED and visit.terminate_reason == "first_visit"
    refund = Refund.objects.get(order__order_no=visit.order_no)
    assert refund.amount_fen == PRICE_FEN
    done = doc.locator("[data-testid=consult-board-done] [data-testid=consult-visit-card]")
    expect(done).to_have_count(1)
    expect(done).to_have_attribute("data-status", "terminated")
    expect(doc.locator("[data-testid=consult-board-waiting-empty]")).to_be_visible()
    _no_raw_text(doc, visit.public_id)
    assert not errors, errors
    ctx.close()
