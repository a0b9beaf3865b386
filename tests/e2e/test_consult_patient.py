"""Chromium, the patient H5 app at 390x844, issue 13's patient path built to
docs/consultations-api.md: 在线复诊 on the home grid, a doctor found through the
department chips, the doctor page showing the licence (R5), the three-step booking
(chief complaint, the prior diagnosis on file with a HIS sync, confirm 复诊), paying on
the sandbox pay sheet, the waiting room whose live position moves when the visit ahead
is cancelled (the page never reloads), a family member joining through the invitation
code (and a wrong code refused), the doctor calling in (the page moves to the visit
room: chat and a running countdown), the visit ending (the page says so and offers the
summary), the summary with the signed diagnosis, and the rating (once)."""

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
from playwright.sync_api import expect

from apps.accounts.models import StaffProfile
from apps.accounts.roles import Role
from apps.accounts.services import token_issue
from apps.consultations.models import Department, DoctorProfile, PriorRecord, Rating, Slot, Visit
from tests.conftest import STRONG, add_patient, make_patient, make_staff
from tests.e2e.conftest import _screenshots
from tests.e2e.helpers import patient_login
from tests.e2e.test_patient_orders import start_shop_server
from tests.pharmacy.conftest import PIN, enrol

pytestmark = pytest.mark.e2e

PHONE = "13612340451"  # the patient who books in the browser
PHONE_AHEAD = "13612340452"  # booked the same slot first (through the API)
PHONE_FAMILY = "13612340453"  # joins with the invitation code
BEIJING = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture
def consult_server(transactional_db: Any, settings: Any, tmp_path: Path) -> Iterator[str]:
    yield from start_shop_server(settings, tmp_path)


def _api(url: str, token: str, method: str = "POST", body: dict[str, Any] | None = None) -> Any:
    req = urllib.request.Request(
        url,
        data=None if method == "GET" else json.dumps(body or {}).encode(),
        method=method,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(req, timeout=30) as answer:
        raw = answer.read()
        return json.loads(raw) if raw else None


def _seed() -> dict[str, Any]:
    dept = Department.objects.create(code="cardio", name="心内科", intro="高血压、冠心病等慢病复诊")
    doctor = make_staff(Role.DOCTOR, "consultdoc")
    StaffProfile.objects.create(
        user=doctor.user, department="心内科", title="主任医师", licence_no="110310000123456", years_of_practice=18
    )
    profile = DoctorProfile.objects.create(
        user=doctor.user,
        department=dept,
        title=DoctorProfile.Title.CHIEF,
        practice_scope="内科专业",
        specialties="高血压、冠心病的长期管理与用药调整",
        price_text_fen=3000,
        price_video_fen=5000,
        is_online=True,
    )
    tomorrow = (dt.datetime.now(BEIJING) + dt.timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
    slot = Slot.objects.create(
        doctor=profile, kind="video", starts_at=tomorrow, ends_at=tomorrow + dt.timedelta(minutes=30), capacity=5
    )
    return {"dept": dept, "doctor": doctor, "profile": profile, "slot": slot}


def _his_record(patient: Any, diagnosis: str) -> PriorRecord:
    return PriorRecord.objects.create(
        patient=patient,
        source=PriorRecord.Source.HIS,
        his_ref=f"HIS-{patient.pk}",
        hospital="本院",
        visit_date=dt.date(2026, 10, 12),
        icd10_code="I10",
        diagnosis=diagnosis,
        review=PriorRecord.Review.ACCEPTED,
    )


def _book_and_pay_through_api(url: str, token: str, patient: Any, slot: Slot, record: PriorRecord) -> dict[str, Any]:
    from apps.commerce.payments.sandbox import gateway

    visit = _api(
        f"{url}/api/v1/consultations/visits",
        token,
        body={
            "patient_id": patient.pk,
            "kind": "video",
            "doctor_id": slot.doctor_id,
            "slot_id": slot.pk,
            "chief_complaint": "高血压复诊，血压控制欠佳",
            "prior_record_id": record.public_id,
        },
    )
    order = _api(f"{url}/api/v1/commerce/orders/{visit['order_no']}/pay", token)
    gateway().pay(order["pay_params"]["sandboxTrade"], order["pay_params"])
    for _ in range(100):
        v = _api(f"{url}/api/v1/consultations/visits/{visit['id']}", token, method="GET")
        if v["status"] == "waiting":
            return dict(v)
        time.sleep(0.1)
    raise AssertionError("the visit ahead was not paid")


def test_patient_books_pays_waits_joins_the_visit_and_rates_it(
    consult_server: str, patient_page: Any, browser: Any
) -> None:
    url, page = consult_server, patient_page
    seed = _seed()
    slot: Slot = seed["slot"]
    account = make_patient(PHONE, "孙丽")
    me = add_patient(account, "孙丽")
    _his_record(me, "原发性高血压（2级）")
    ahead_account = make_patient(PHONE_AHEAD, "周强")
    ahead_patient = add_patient(ahead_account, "周强")
    ahead_token = token_issue(user=ahead_account.user).raw
    ahead = _book_and_pay_through_api(url, ahead_token, ahead_patient, slot, _his_record(ahead_patient, "高血压"))

    # --- find the doctor: home grid -> 在线复诊 -> the department -> the doctor page (licence shown) ------
    patient_login(page, url, PHONE)
    page.click("[data-testid=consultations-entry]")
    page.locator("[data-testid=dept-item]", has_text="心内科").click()
    card = page.locator("[data-testid=doctor-card]", has_text="主任医师")
    expect(card).to_contain_text("擅长：高血压")
    expect(card.locator("[data-testid=price-video]")).to_have_text("视频 ¥50.00")
    card.click()
    expect(page.locator("[data-testid=doctor-licence-no]")).to_have_text("110310000123456")
    page.click("[data-testid=doctor-kind-video]")
    chip = page.locator("[data-testid=slot-chip]").first
    expect(chip).to_contain_text("10:00-10:30")
    expect(chip).to_contain_text("余 4")  # 5 places, one taken by the visit ahead
    chip.click()
    _screenshots.shoot(page, "consult-doctor-")
    page.click("[data-testid=doctor-book]")

    # --- book: complaint, the prior diagnosis (with a HIS sync), confirm 复诊, submit -----------------
    expect(page.locator("[data-testid=book-steps]")).to_have_attribute("data-step", "1")
    expect(page.locator("[data-testid=book-price]")).to_have_text("¥50.00")
    page.locator("[data-testid=book-complaint] textarea").fill("高血压复诊，最近血压 150/95，想调整用药")
    page.click("[data-testid=book-next-1]")
    record = page.locator("[data-testid=prior-record]", has_text="原发性高血压（2级）")
    expect(record).to_contain_text("本院记录")
    page.click("[data-testid=prior-his-sync]")
    expect(page.locator("[data-testid=prior-sync-note]")).to_be_visible()
    record.click()
    expect(page.locator("[data-testid=guardian-card]")).to_have_count(0)  # an adult: no guardian asked
    page.click("[data-testid=book-next-2]")
    confirm = page.locator("[data-testid=book-confirm]")
    expect(confirm).to_contain_text("原发性高血压（2级）")
    expect(page.locator("[data-testid=book-submit]")).to_have_attribute("disabled", "true")  # 复诊 not confirmed yet
    page.click("[data-testid=book-agree]")
    _screenshots.shoot(page, "consult-confirm-")
    page.click("[data-testid=book-submit]")

    # --- pay on the sandbox sheet, back to the waiting room -----------------------------------------
    expect(page.locator("[data-testid=pay-sheet]")).to_be_visible(timeout=15000)
    expect(page.locator("[data-testid=pay-amount]")).to_have_text("¥50.00")
    page.click("[data-testid=pay-confirm]")
    expect(page.locator("[data-testid=pay-success]")).to_contain_text("支付成功", timeout=20000)
    visit = Visit.objects.get(patient=me)
    assert visit.status == Visit.Status.WAITING and visit.slot_id == slot.pk
    page.go_back()
    expect(page.locator("[data-testid=waiting-status]")).to_have_text("候诊中")
    position = page.locator("[data-testid=queue-position]")
    expect(position).to_have_text("2")
    expect(page.locator("[data-testid=queue-text]")).to_contain_text("前面还有 1 人")
    expect(page.locator("[data-testid=refund-rule]")).to_contain_text("全额原路退回")
    _screenshots.shoot(page, "consult-waiting-2-")

    # The visit ahead is cancelled: the position moves live, without a reload.
    page.evaluate("window.__sameDocument = 'yes'")
    _api(f"{url}/api/v1/consultations/visits/{ahead['id']}/cancel", ahead_token)
    expect(position).to_have_text("1", timeout=15000)
    expect(page.locator("[data-testid=queue-text]")).to_contain_text("前面没有人了")
    assert page.evaluate("window.__sameDocument") == "yes"
    _screenshots.shoot(page, "consult-waiting-1-")

    # --- a family member joins with the invitation code; a wrong code is refused --------------------
    page.click("[data-testid=invite-create]")
    code = page.locator("[data-testid=invite-code]").inner_text().strip()
    assert code
    family_account = make_patient(PHONE_FAMILY, "孙建")
    family_ctx = browser.new_context(viewport={"width": 390, "height": 844})
    family = family_ctx.new_page()
    try:
        patient_login(family, url, PHONE_FAMILY)
        family.goto(f"{url}/h5/#/pages/consult/redeem")
        family.locator("[data-testid=redeem-code] input").fill("WRONG000")
        family.click("[data-testid=redeem-submit]")
        expect(family.locator("[data-testid=redeem-error]")).to_contain_text("邀请码不正确")
        family.locator("[data-testid=redeem-code] input").fill(code)
        family.click("[data-testid=redeem-submit]")
        expect(family.locator("[data-testid=waiting-status]")).to_have_text("候诊中")
        expect(family.locator("[data-testid=waiting-cancel]")).to_have_count(0)  # only the booking account cancels
        _screenshots.shoot(family, "consult-family-")
    finally:
        family_ctx.close()
    assert family_account.user.pk

    # --- the doctor steps up, accepts (复诊 confirmed) and calls in: the page enters the visit room ----
    doc_token = token_issue(user=seed["doctor"].user).raw
    base = f"{url}/api/v1/consultations/visits/{visit.public_id}"
    _api(f"{base}/step-up", doc_token, body={"method": "password", "password": STRONG})
    _api(f"{base}/accept", doc_token, body={"confirm_followup": True})
    _api(f"{base}/call", doc_token)
    expect(page.locator("[data-testid=chat-room]")).to_be_visible(timeout=15000)
    expect(page.locator("[data-testid=visit-video]")).to_be_visible()
    countdown = page.locator("[data-testid=visit-countdown-time]")
    expect(countdown).to_have_text(re.compile(r"^\d+:\d\d$"))
    first = countdown.inner_text()
    page.wait_for_timeout(2500)
    assert countdown.inner_text() != first  # it runs between ticks
    page.locator("[data-testid=chat-input] input").fill("医生您好，我按时吃药了")
    page.click("[data-testid=chat-send]")
    expect(page.locator("[data-testid=message-list]")).to_contain_text("医生您好，我按时吃药了")
    _screenshots.shoot(page, "consult-visit-")

    # --- the doctor writes and signs the record, then ends the visit: the page says so --------------
    enrol(seed["doctor"])
    _api(
        f"{base}/record",
        doc_token,
        method="PUT",
        body={
            "chief_complaint": "高血压复诊",
            "present_history": "血压控制欠佳",
            "past_history": "高血压 5 年",
            "icd10_code": "I10",
            "diagnosis": "原发性高血压（2级）",
            "advice": "低盐饮食，每日监测血压，两周后复诊",
            "notes": "医生自己的备注",
        },
    )
    _api(f"{base}/record/sign", doc_token, body={"pin": PIN})
    _api(f"{base}/end", doc_token)
    expect(page.locator("[data-testid=visit-ended]")).to_contain_text("问诊已结束", timeout=15000)
    page.click("[data-testid=visit-open-summary]")

    # --- the summary (no private notes) and the rating, once ----------------------------------------
    expect(page.locator("[data-testid=summary-diagnosis]")).to_contain_text("原发性高血压（2级）")
    expect(page.locator("[data-testid=summary-advice]")).to_contain_text("低盐饮食")
    expect(page.locator("body")).not_to_contain_text("医生自己的备注")
    expect(page.locator("[data-testid=summary-order]")).to_contain_text("¥50.00")
    page.click("[data-testid=rating-star-5]")
    page.locator("[data-testid=rating-tag]", has_text="解答耐心").click()
    page.locator("[data-testid=rating-comment] textarea").fill("医生很耐心")
    page.click("[data-testid=rating-submit]")
    expect(page.locator("[data-testid=rating-done]")).to_be_visible()
    _screenshots.shoot(page, "consult-summary-")
    rating = Rating.objects.get(visit=visit)
    assert rating.stars == 5 and rating.tags == ["解答耐心"]
    page.reload()
    expect(page.locator("[data-testid=rating-done]")).to_be_visible()
    expect(page.locator("[data-testid=rating-submit]")).to_have_count(0)
    assert Rating.objects.filter(visit=visit).count() == 1

    # 服务记录 lists the visit and opens its summary.
    page.goto(f"{url}/h5/#/pages/records/records")
    page.locator("[data-testid=record-item]", has_text="在线复诊").click()
    expect(page.locator("[data-testid=summary-diagnosis]")).to_contain_text("原发性高血压（2级）")
    assert page.errors == []


def test_patient_under_six_needs_a_guardian_and_no_prior_record_blocks_the_next_step(
    consult_server: str, patient_page: Any
) -> None:
    url, page = consult_server, patient_page
    seed = _seed()
    account = make_patient("13612340454", "刘芳")
    add_patient(account, "刘芳")
    child = add_patient(account, "刘小宝", relation="child", birth=dt.date.today() - dt.timedelta(days=3 * 365))
    patient_login(page, url, "13612340454")
    page.goto(f"{url}/h5/#/pages/consult/book?doctor={seed['profile'].pk}&kind=video&slot={seed['slot'].pk}")
    page.locator("[data-testid=book-patient]", has_text="刘小宝").click()
    page.locator("[data-testid=book-complaint] textarea").fill("哮喘复诊，最近夜间咳嗽")
    page.click("[data-testid=book-next-1]")
    # No prior diagnosis on file: the step does not move on.
    expect(page.locator("[data-testid=prior-empty]")).to_be_visible()
    page.click("[data-testid=book-next-2]")
    expect(page.locator("[data-testid=book-steps]")).to_have_attribute("data-step", "2")
    # The guardian is asked for the child under 6.
    expect(page.locator("[data-testid=guardian-card]")).to_be_visible()
    _his_record(child, "支气管哮喘")
    page.reload()
    page.locator("[data-testid=book-patient]", has_text="刘小宝").click()
    page.locator("[data-testid=book-complaint] textarea").fill("哮喘复诊，最近夜间咳嗽")
    page.click("[data-testid=book-next-1]")
    page.locator("[data-testid=prior-record]", has_text="支气管哮喘").click()
    page.click("[data-testid=book-next-2]")
    expect(page.locator("[data-testid=book-steps]")).to_have_attribute("data-step", "2")  # guardian missing
    page.locator("[data-testid=guardian-name] input").fill("刘芳")
    page.click("[data-testid=guardian-rel-mother]")
    page.locator("[data-testid=guardian-phone] input").fill("13612340454")
    page.click("[data-testid=book-next-2]")
    expect(page.locator("[data-testid=book-confirm]")).to_contain_text("刘芳（母亲）")
    page.click("[data-testid=book-agree]")
    page.click("[data-testid=book-submit]")
    expect(page.locator("[data-testid=pay-sheet]")).to_be_visible(timeout=15000)
    visit = Visit.objects.get(patient=child)
    assert visit.guardian_name == "刘芳" and visit.guardian_relation == "mother"
    assert visit.status == Visit.Status.PENDING_PAYMENT
    assert page.errors == []
