"""Chromium: the doctor assigns PHQ-9 in the console, the patient completes it
in the H5 app with item 9 answered 1, the doctor sees the alert live and
acknowledges it, and the clinical report shows the band and the trend."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyotp
import pytest
from django.utils import timezone
from playwright.sync_api import expect

from apps.im import services as im_services
from apps.psych import services as psych
from apps.psych.models import Alert, Result
from tests.conftest import STRONG, make_patient
from tests.e2e.helpers import sms_code
from tests.psych.conftest import add_patient, make_doctor

pytestmark = pytest.mark.e2e

PHONE = "13612340077"


def test_assign_complete_alert_acknowledge_report(live_server_url: str, browser: Any, page: Any) -> None:
    doctor = make_doctor("e2epsy")
    account = make_patient(PHONE, "李雷")
    me = add_patient(account, "李雷")
    im_services.conversation_for_pair(staff=doctor.user, patient=account.user)
    # An earlier PHQ-9 of the same patient, so the report has a trend.
    (earlier,) = psych.assignments_create(
        doctor=doctor.user, patient_id=me.pk, scale_codes=["PHQ-9"], due_at=timezone.now() + dt.timedelta(days=3)
    )
    psych.assignment_submit(
        user=account.user, assignment_id=earlier.pk, answers={n: (2 if n <= 6 else 0) for n in range(1, 10)}
    )

    # --- the doctor assigns PHQ-9 in the console --------------------------------------------
    ctx = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", viewport={"width": 1400, "height": 900})
    doc = ctx.new_page()
    doc_errors: list[str] = []
    doc.on("pageerror", lambda exc: doc_errors.append(str(exc)))
    doc.goto(f"{live_server_url}/console/")
    doc.fill("[data-testid=login-username]", "e2epsy")
    doc.fill("[data-testid=login-password]", STRONG)
    doc.click("[data-testid=login-submit]")
    doc.locator("[data-testid=login-otp]").fill(pyotp.TOTP(doctor.totp_secret).now())
    doc.click("[data-testid=login-submit]")
    expect(doc.locator("[data-testid=header-ws-status]")).to_have_attribute("data-status", "connected")
    doc.click("[data-testid=menu-psych]")
    doc.click("[data-testid=psych-patient-row][data-patient=李雷]")
    expect(doc.locator("[data-testid=psych-assignments]")).to_contain_text("PHQ-9")
    doc.click("[data-testid=psych-assign-open]")
    doc.click("[data-testid=psych-scale-PHQ-9]")
    doc.click("[data-testid=psych-assign-submit]")
    expect(doc.locator("[data-testid=psych-assignment-status]").filter(has_text="待填写")).to_have_count(1)
    doc.click("[data-testid=menu-psych-alerts]")
    expect(doc.locator("[data-testid=psych-alerts]")).to_contain_text("暂无预警")

    # --- the patient completes it in the H5 app -----------------------------------------------
    page.goto(f"{live_server_url}/h5/")
    page.locator("[data-testid=phone-input] input").fill(PHONE)
    page.click("[data-testid=send-code]")
    page.locator("[data-testid=code-input] input").fill(sms_code(page, PHONE))
    page.click("[data-testid=agree-checkbox]")
    page.click("[data-testid=login-button]")
    expect(page.locator("[data-testid=me-name]")).to_contain_text("李雷")
    page.goto(f"{live_server_url}/h5/#/pages/psych/list")
    page.click("[data-testid=psych-item][data-status=assigned]")
    expect(page.locator("[data-testid=psych-scale-name]")).to_contain_text("PHQ-9")
    for n in range(1, 10):
        expect(page.locator("[data-testid=psych-question-no]")).to_contain_text(f"第 {n} / 9 题")
        page.locator("[data-testid=psych-option]").nth(1 if n == 9 else 0).click()
    expect(page.locator("[data-testid=psych-progress]")).to_contain_text("已答 9 / 9 题")
    page.click("[data-testid=psych-submit]")
    expect(page.locator(".uni-modal")).to_contain_text("提交后答案不能修改")
    page.click(".uni-modal__btn_primary")  # confirm the irreversible submit
    expect(page.locator("[data-testid=psych-band]")).to_contain_text("无抑郁症状")
    expect(page.locator("[data-testid=psych-help]")).to_contain_text("12356")
    expect(page.locator("[data-testid=psych-disclaimer]")).to_contain_text("不能作为诊断依据")
    result = Result.objects.exclude(pk=earlier.result.pk).get()
    assert (result.raw_score, result.answers["9"]) == (1, 1)

    # --- the doctor sees the alert live and acknowledges it ----------------------------------
    expect(doc.locator(".psych-alert-notification")).to_contain_text("李雷")
    row_status = doc.locator("[data-testid=psych-alert-status]")
    expect(row_status).to_have_text("待处理")
    doc.click("[data-testid=psych-alert-ack]")
    doc.locator(".el-message-box input").fill("已电话联系患者，安排面诊")
    doc.locator(".el-message-box__btns .el-button--primary").click()
    expect(doc.locator("[data-testid=psych-alerts]")).to_contain_text("暂无预警")
    alert = Alert.objects.get()
    assert (alert.status, alert.acknowledged_by_id) == ("acknowledged", doctor.user.pk)
    assert list(alert.events.values_list("action", flat=True)) == ["raised", "notified", "acknowledged"]

    # --- the clinical report shows the band and the trend ------------------------------------
    doc.goto(f"{live_server_url}/console/#/psych/results/{result.pk}")
    expect(doc.locator("[data-testid=psych-report-band]")).to_have_text("无抑郁症状")
    expect(doc.locator("[data-testid=psych-report-norm]")).to_contain_text("PHQ-9")
    points = doc.locator("[data-testid=psych-trend-point]")
    expect(points).to_have_count(2)
    assert [points.nth(i).get_attribute("data-score") for i in range(2)] == ["12", "1"]
    expect(doc.locator("[data-testid=psych-report-items]")).to_contain_text("有不如死掉或用某种方式伤害自己的念头")
    assert doc_errors == [] and page.errors == []
    ctx.close()
