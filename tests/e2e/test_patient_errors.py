"""The patient's irreversible scale submit asks first (cancel submits nothing,
confirm submits), and bad links to a scale or a result show a message with a way
back instead of a blank page; the console report does the same for a bad id.
Patient pages at 390x844; screenshots to /tmp/ui-*.png."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from apps.im import services as im_services
from apps.psych import services as psych
from apps.psych.models import Result
from tests.conftest import make_patient
from tests.e2e.helpers import console_login, patient_login
from tests.psych.conftest import add_patient, make_doctor

pytestmark = pytest.mark.e2e

PHONE = "13612340091"


@pytest.fixture
def phone_page(browser: Any) -> Any:
    context = browser.new_context(
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
    )
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.errors = errors
    yield pg
    context.close()


def test_submit_asks_first_and_bad_ids_show_a_way_back(live_server_url: str, phone_page: Any) -> None:
    page = phone_page
    doctor = make_doctor("errpsy")
    account = make_patient(PHONE, "韩梅梅")
    me = add_patient(account, "韩梅梅")
    im_services.conversation_for_pair(staff=doctor.user, patient=account.user)
    # An earlier GAD-7, so the patient's report has a trend to draw.
    (earlier,) = psych.assignments_create(
        doctor=doctor.user, patient_id=me.pk, scale_codes=["GAD-7"], due_at=timezone.now() + dt.timedelta(days=3)
    )
    psych.assignment_submit(user=account.user, assignment_id=earlier.pk, answers={n: 2 for n in range(1, 8)})
    (a,) = psych.assignments_create(
        doctor=doctor.user, patient_id=me.pk, scale_codes=["GAD-7"], due_at=timezone.now() + dt.timedelta(days=3)
    )
    psych.answers_save(user=account.user, assignment_id=a.pk, answers={n: 1 for n in range(1, 8)})

    patient_login(page, live_server_url, PHONE)
    expect(page.locator(".uni-toast")).to_be_hidden(timeout=5000)  # the login toast gone before the screenshots
    page.goto(f"{live_server_url}/h5/#/pages/psych/fill?id={a.pk}")
    submit = page.locator("[data-testid=psych-submit]")
    expect(submit).to_be_visible()

    # Cancel: the modal closes and nothing is submitted.
    submit.click()
    modal = page.locator(".uni-modal")
    expect(modal).to_contain_text("提交后答案不能修改，确认提交？")
    page.wait_for_timeout(400)  # the modal's fade-in
    page.screenshot(path="/tmp/ui-psych-fill-confirm.png")
    page.click(".uni-modal__btn_default")
    expect(modal).to_be_hidden()
    page.wait_for_timeout(500)
    assert not Result.objects.filter(assignment=a).exists()
    expect(submit).to_be_visible()

    # Confirm: submitted, and the report shows the trend chart of both results.
    submit.click()
    page.click(".uni-modal__btn_primary")
    expect(page.locator("[data-testid=psych-band]")).to_be_visible()
    assert Result.objects.filter(assignment=a).count() == 1
    expect(page.locator("[data-testid=trend-canvas]")).to_be_visible()
    expect(page.locator("[data-testid=psych-trend-row]")).to_have_count(2)
    box = page.locator("[data-testid=trend-canvas]").bounding_box()
    assert box is not None and 250 < box["width"] <= 390 and box["height"] > 100
    page.locator("[data-testid=psych-trend-card]").scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    page.screenshot(path="/tmp/ui-psych-report-trend.png", full_page=True)

    # Bad ids: a message and a way back to the list, never a blank page.
    for url, shot in (
        ("/pages/psych/fill?id=999999", "fill-missing"),
        ("/pages/psych/fill?id=abc", "fill-abc"),
        ("/pages/psych/report?id=abc", "report-abc"),
        ("/pages/psych/report?id=999999", "report-missing"),
    ):
        page.goto(f"{live_server_url}/h5/#{url}")
        page.reload()
        error = page.locator("[data-testid=psych-error]")
        expect(error).to_be_visible()
        expect(error).to_contain_text("返回心理测评")
        assert "未找到" in error.inner_text() or "有误" in error.inner_text()
        page.screenshot(path=f"/tmp/ui-psych-{shot}.png")
    page.click("[data-testid=psych-back-list]")
    expect(page.locator("[data-testid=psych-item]").first).to_be_visible()
    assert page.errors == []


def test_console_report_bad_id(live_server_url: str, page: Any) -> None:
    doctor = make_doctor("errdoc")
    page.set_viewport_size({"width": 1400, "height": 900})
    console_login(page, live_server_url, "errdoc", doctor)
    for bad in ("abc", "999999"):
        page.goto(f"{live_server_url}/console/#/psych/results/{bad}")
        error = page.locator("[data-testid=psych-report-error]")
        expect(error).to_be_visible()
        expect(error).to_contain_text("未找到该测评报告" if bad == "999999" else "报告地址有误")
        page.screenshot(path=f"/tmp/ui-console-report-{bad}.png")
    page.click("[data-testid=psych-report-back]")
    expect(page).to_have_url(f"{live_server_url}/console/#/psych")
    assert page.errors == []
