"""Chromium, patient app at 390x844: issue 10's patient-side defects, each shown
on the page as a patient sees it."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from playwright.sync_api import expect

from apps.accounts import services as accounts
from apps.accounts.models import ConsentRecord
from tests.conftest import make_patient
from tests.e2e.helpers import PATIENT_PHONE, patient_login

pytestmark = pytest.mark.e2e


def _phone(browser: Any, tz: str = "Asia/Shanghai") -> Any:
    ctx = browser.new_context(locale="zh-CN", timezone_id=tz, **PATIENT_PHONE)
    return ctx, ctx.new_page()


def test_consent_times_are_beijing_time_on_a_device_in_another_zone(live_server_url: str, browser: Any) -> None:
    """Defect 8: a phone set to New York still reads the consent time in Beijing time."""
    account = make_patient("13612340201", "王芳")
    record = accounts.consent_set(user=account.user, purpose="research", granted=True)
    # 2026-11-30 16:30 UTC = 2026-12-01 00:30 in Beijing = 2026-11-30 11:30 in New York.
    ConsentRecord.objects.filter(pk=record.pk).update(at=dt.datetime(2026, 11, 30, 16, 30, tzinfo=dt.UTC))
    ctx, page = _phone(browser, tz="America/New_York")
    try:
        patient_login(page, live_server_url, "13612340201")
        page.goto(f"{live_server_url}/h5/#/pages/consents/consents")
        item = page.locator("[data-testid=consent-item][data-purpose=research]")
        expect(item).to_contain_text("更新于 2026-12-01 00:30")
        expect(item).not_to_contain_text("11:30")
    finally:
        ctx.close()


def test_home_todos_service_grid_tabs_and_records(live_server_url: str, browser: Any) -> None:
    """The shell: a 待办 strip with a badge fed by /todos/, the service grid from the
    module registry, tab badges, 服务记录 with its empty state, and 我的."""
    from apps.im import services as im_services
    from apps.psych import services as psych
    from tests.psych.conftest import add_patient, make_doctor

    doctor = make_doctor("e2eshell")
    account = make_patient("13612340202", "陈静")
    me = add_patient(account, "陈静")
    im_services.conversation_for_pair(staff=doctor.user, patient=account.user)
    due = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
    (phq,) = psych.assignments_create(doctor=doctor.user, patient_id=me.pk, scale_codes=["PHQ-9"], due_at=due)
    ctx, page = _phone(browser)
    try:
        patient_login(page, live_server_url, "13612340202")
        todo = page.locator("[data-testid=todo-item][data-kind='psych.scales_to_fill']")
        expect(todo).to_contain_text("待填写的心理量表（1）")
        expect(todo).to_contain_text("PHQ-9")
        expect(page.locator("[data-testid=todo-badge]")).to_have_text("1")
        expect(page.locator("[data-testid=psych-entry]")).to_contain_text("心理测评")
        tabs = page.locator(".uni-tabbar__item")
        expect(tabs.locator(".uni-tabbar__label")).to_have_text(["首页", "消息", "服务记录", "我的"])
        # 首页 carries the to-do count, 消息 the unread card the assignment posted.
        expect(tabs.nth(0).locator(".uni-tabbar__badge")).to_have_text("1")
        expect(tabs.nth(1).locator(".uni-tabbar__badge")).to_have_text("1")
        page.screenshot(path="/tmp/shell-home.png")

        # 服务记录 is empty until a service is done, and says what to do.
        tabs.nth(2).click()
        expect(page.locator("[data-testid=state-empty]")).to_contain_text("暂无服务记录")
        psych.assignment_submit(user=account.user, assignment_id=phq.pk, answers={n: 0 for n in range(1, 10)})
        page.reload()
        record = page.locator("[data-testid=record-item]")
        expect(record).to_have_count(1)
        expect(record).to_contain_text("PHQ-9 · 无抑郁症状")
        record.click()
        expect(page.locator("[data-testid=psych-band]")).to_contain_text("无抑郁症状")

        # Back home the to-do is gone and the strip says so.
        page.goto(f"{live_server_url}/h5/#/pages/index/index")
        expect(page.locator("[data-testid=todo-empty]")).to_be_visible()
        expect(page.locator("[data-testid=todo-badge]")).to_have_count(0)

        # 我的: the account's pages and sign-out (confirmed first).
        page.locator(".uni-tabbar__item", has_text="我的").click()
        expect(page.locator("[data-testid=me-page-name]")).to_have_text("陈静")
        expect(page.locator("[data-testid=patients-entry]")).to_be_visible()
        expect(page.locator("[data-testid=consents-entry]")).to_be_visible()
        page.screenshot(path="/tmp/shell-me.png")
        page.click("[data-testid=logout-button]")
        page.locator(".uni-modal__btn_primary").click()
        expect(page.locator("[data-testid=login-button]")).to_be_visible()
    finally:
        ctx.close()


def test_family_members_relation_is_chosen_not_defaulted_one_spouse_edit_and_limit(
    live_server_url: str, browser: Any
) -> None:
    """Defect 6: no relation is picked for the user; a second spouse cannot be chosen;
    a child needs no phone; a member is edited; the limit shows before the form."""
    from apps.accounts.idcard import make_id_number
    from apps.accounts.models import Patient
    from tests.psych.conftest import add_patient

    account = make_patient("13612340203", "刘洋")
    add_patient(account, "刘洋")
    ctx, page = _phone(browser)
    try:
        patient_login(page, live_server_url, "13612340203")
        page.goto(f"{live_server_url}/h5/#/pages/patients/list")
        expect(page.locator("[data-testid=patients-intro]")).to_contain_text("还可添加 5 位")
        page.click("[data-testid=add-patient]")
        expect(page.locator("[data-testid=family-remaining]")).to_contain_text("还可添加 5 位家庭成员")
        page.locator("[data-testid=patient-name-input] input").fill("陈红")
        page.locator("[data-testid=patient-id-input] input").fill(make_id_number("440106", dt.date(1988, 5, 6), "022"))
        # Saving without choosing a relation is refused: nothing was chosen for the user.
        page.click("[data-testid=patient-submit]")
        expect(page.locator(".uni-toast, .uni-sample-toast").first).to_contain_text("请选择与您的关系")
        assert not Patient.objects.filter(name="陈红").exists()
        page.click("[data-testid=relation-spouse]")
        page.click("[data-testid=patient-submit]")
        expect(page.locator("[data-testid=patient-item]")).to_have_count(2)
        spouse = Patient.objects.get(name="陈红")
        assert spouse.relation == "spouse" and spouse.phone == ""

        # A second spouse cannot be chosen; a child is added without a phone.
        page.click("[data-testid=add-patient]")
        expect(page.locator("[data-testid=relation-spouse]")).to_have_class(re.compile("chip-off"))
        page.click("[data-testid=relation-spouse]")
        expect(page.locator("[data-testid=relation-spouse]")).not_to_have_class(re.compile("chip-on"))
        page.click("[data-testid=relation-child]")
        page.locator("[data-testid=patient-name-input] input").fill("刘小宝")
        page.locator("[data-testid=patient-id-input] input").fill(make_id_number("440106", dt.date(2021, 3, 3), "031"))
        page.screenshot(path="/tmp/patients-add.png")
        page.click("[data-testid=patient-submit]")
        expect(page.locator("[data-testid=patient-item]")).to_have_count(3)
        assert Patient.objects.get(name="刘小宝").relation == "child"

        # Edit the child's name; the ID number is shown but cannot be changed.
        page.locator("[data-testid=patient-item]").filter(has_text="刘小宝").locator(
            "[data-testid=patient-edit]"
        ).click()
        expect(page.locator("[data-testid=patient-id-readonly]")).to_contain_text("*")
        page.locator("[data-testid=patient-name-input] input").fill("刘宝")
        page.click("[data-testid=patient-submit]")
        expect(page.locator("[data-testid=patient-item]").filter(has_text="刘宝")).to_have_count(1)
        assert Patient.objects.filter(name="刘宝", relation="child").exists()

        # Full family: the add page says so before any form.
        for n in range(3):
            add_patient(account, f"亲属{n}", relation="other", birth=dt.date(1960, 1, n + 1))
        page.goto(f"{live_server_url}/h5/#/pages/patients/list")
        page.click("[data-testid=add-patient]")
        expect(page.locator("[data-testid=family-limit]")).to_contain_text("家庭成员已达上限")
        expect(page.locator("[data-testid=patient-name-input]")).to_have_count(0)
    finally:
        ctx.close()


def test_notification_settings_from_me(live_server_url: str, browser: Any) -> None:
    """我的 -> 通知设置: only the channels this client can receive, SMS off, quiet hours on."""
    from apps.notifications.models import Preference, QuietHours

    account = make_patient("13612340204", "钱进")
    ctx, page = _phone(browser)
    try:
        patient_login(page, live_server_url, "13612340204")
        page.locator(".uni-tabbar__item", has_text="我的").click()
        page.click("[data-testid=notify-settings-entry]")
        channels = page.locator("[data-testid=notify-channel]")
        expect(channels).to_have_count(2)  # H5: in-app and SMS; WeChat/Alipay only inside their mini-programs
        expect(channels.nth(1)).to_contain_text("短信")
        page.click("[data-testid=notify-switch-sms]")
        expect(page.locator("[data-testid=notify-saved]")).to_be_visible()
        page.wait_for_timeout(300)
        assert Preference.objects.get(user=account.user, channel="sms").enabled is False
        page.click("[data-testid=quiet-switch]")
        expect(page.locator("[data-testid=quiet-start]")).to_contain_text("22:00")
        page.wait_for_timeout(500)
        quiet = QuietHours.objects.get(user=account.user)
        assert (quiet.start.strftime("%H:%M"), quiet.end.strftime("%H:%M")) == ("22:00", "07:00")
        page.screenshot(path="/tmp/notify-settings.png")
    finally:
        ctx.close()


def test_the_h5_app_runs_under_the_csp_with_a_phone_viewport(live_server_url: str, browser: Any) -> None:
    """The CSP now covers /h5/ (issue 11, finding 5): nothing is blocked and the page lays
    out at the phone's width (the viewport no longer comes from an inline script)."""
    ctx, page = _phone(browser)
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    try:
        page.goto(f"{live_server_url}/h5/")
        expect(page.locator("[data-testid=login-button]")).to_be_visible()
        assert page.evaluate("document.documentElement.clientWidth") == 390
        assert page.locator("meta[name=viewport]").count() == 1
        assert violations == [], violations
    finally:
        ctx.close()
