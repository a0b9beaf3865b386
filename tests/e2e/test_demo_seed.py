"""Chromium on a freshly seeded demo: the seeded doctor signs in, opens 心理测评,
finds a patient of their care team and assigns PHQ-9 with no setup step; the
我的接诊 page shows why (诊疗计划) and until when. Screenshots go to var/test/."""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path
from typing import Any

import pyotp
import pytest
from django.conf import settings
from django.core.management import call_command
from playwright.sync_api import expect

from apps.accounts.demo import demo_patient
from apps.accounts.models import User
from apps.care_team.models import CareRelationship
from apps.im import services as im_services
from apps.im.models import Message
from apps.psych.models import Assignment

pytestmark = pytest.mark.e2e

# Words that would mean a raw key, an enum value or an untranslated label reached the page.
RAW = re.compile(
    r"\b(care_plan|conversation|im_conversation|assigned|in_progress|submitted|doctor|None|null|undefined|NaN)\b"
)


def _seeded_doctor() -> tuple[str, str]:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    line = next(line for line in out.getvalue().splitlines() if "用户名 doctor " in line)
    match = re.search(r"密码 (\S+)\s+TOTP密钥 (\S+)", line)
    assert match is not None, line
    return match.group(1), match.group(2)


def _settle(page: Any) -> None:
    """Toasts gone and enter transitions finished, so the screenshot shows the page."""
    expect(page.locator(".el-message")).to_have_count(0, timeout=10_000)
    page.wait_for_timeout(400)


def _visible_text(page: Any) -> str:
    text: str = page.locator("body").inner_text()
    return text


def test_fresh_demo_doctor_assigns_phq9_at_once(live_server_url: str, browser: Any) -> None:
    password, totp_secret = _seeded_doctor()
    # The seeded history belongs to 王芳 and 张小明; 张伟 has no scale yet.
    assert not Assignment.objects.filter(patient__name="张伟").exists()
    assert Assignment.objects.filter(patient__name="王芳", status="submitted").count() == 2
    shots = Path(settings.VAR_DIR)

    ctx = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", viewport={"width": 1400, "height": 900})
    doc = ctx.new_page()
    errors: list[str] = []
    doc.on("pageerror", lambda exc: errors.append(str(exc)))
    doc.goto(f"{live_server_url}/console/")
    doc.fill("[data-testid=login-username]", "doctor")
    doc.fill("[data-testid=login-password]", password)
    doc.click("[data-testid=login-submit]")
    doc.locator("[data-testid=login-otp]").fill(pyotp.TOTP(totp_secret).now())
    doc.click("[data-testid=login-submit]")
    expect(doc.locator("[data-testid=header-ws-status]")).to_have_attribute("data-status", "connected")

    # 工作台: the seeded history is waiting (王芳's item-9 alert, two reports to sign), and
    # the sidebar carries the same counts.
    expect(doc.locator("[data-testid=workbench]")).to_be_visible()
    alert = doc.locator("[data-testid=workbench-todo][data-kind='psych.alerts']")
    expect(alert.locator("[data-testid=workbench-todo-count]")).to_have_text("1")
    expect(alert).to_contain_text("待处理的心理预警")
    sign = doc.locator("[data-testid=workbench-todo][data-kind='psych.reports_to_sign']")
    expect(sign.locator("[data-testid=workbench-todo-count]")).to_have_text("2")
    expect(doc.locator("[data-testid=menu-badge-psych-alerts]")).to_have_text("1")
    # The patient search finds the seeded patient within the care team, and opens their page.
    doc.fill("[data-testid=patient-search-input]", "张伟")
    doc.click("[data-testid=patient-search-submit]")
    doc.click("[data-testid=patient-search-row][data-patient=张伟]")
    expect(doc.locator("[data-testid=patient-name]")).to_have_text("张伟")
    expect(doc.locator("[data-testid=patient-tab-psych]")).to_contain_text("暂无心理量表")
    _settle(doc)
    doc.screenshot(path=str(shots / "demo_seed_patient.png"), full_page=True)
    assert not RAW.search(_visible_text(doc)), _visible_text(doc)
    doc.goto(f"{live_server_url}/console/#/")
    expect(doc.locator("[data-testid=workbench-todos]")).to_be_visible()
    _settle(doc)
    doc.screenshot(path=str(shots / "demo_seed_workbench.png"), full_page=True)

    # 心理测评: the care team's patients are there; assign PHQ-9 to 张伟.
    doc.click("[data-testid=menu-psych]")
    for name in ("张伟", "王芳", "张小明"):
        expect(doc.locator(f"[data-testid=psych-patient-row][data-patient={name}]")).to_be_visible()
    doc.click("[data-testid=psych-patient-row][data-patient=张伟]")
    expect(doc.locator("[data-testid=psych-assignments]")).to_contain_text("暂无量表")
    doc.click("[data-testid=psych-assign-open]")
    doc.click("[data-testid=psych-scale-PHQ-9]")
    doc.click("[data-testid=psych-assign-submit]")
    expect(doc.locator("[data-testid=psych-assignment-status]").filter(has_text="待填写")).to_have_count(1)
    expect(doc.locator("[data-testid=psych-assignments]")).to_contain_text("PHQ-9")
    _settle(doc)
    doc.screenshot(path=str(shots / "demo_seed_psych.png"), full_page=True)
    assert not RAW.search(_visible_text(doc)), _visible_text(doc)

    a = Assignment.objects.select_related("patient", "assigned_by").get(patient__name="张伟")
    assert (a.patient.name, a.scale.code, a.assigned_by.username, a.status) == ("张伟", "PHQ-9", "doctor", "assigned")
    # The card went to the seeded care-team conversation.
    card = Message.objects.filter(kind="card").order_by("-id").first()
    assert card is not None and card.body["data"]["patient_name"] == "张伟"
    assert card.conversation.ref_type == "demo_care_team" and card.body["card_type"] == "scale_assignment"

    # 我的接诊: why the doctor holds them in care, and until when.
    doc.click("[data-testid=menu-care]")
    rows = doc.locator("[data-testid=care-relationships] .el-table__row")
    expect(rows).to_have_count(CareRelationship.objects.filter(staff__username="doctor").count())
    expect(doc.locator("[data-testid=care-reason]").first).to_have_text("诊疗计划")
    expect(doc.locator("[data-testid=care-relationships] .el-tag").filter(has_text="有效")).to_have_count(3)
    assert not RAW.search(_visible_text(doc)), _visible_text(doc)

    # A visit with another patient: take 李娜 into care from it, as a doctor would.
    lina = demo_patient("13800138002")
    assert lina is not None and "13800138002" not in lina.username
    im_services.conversation_for_pair(staff=User.objects.get(username="doctor"), patient=lina)
    doc.reload()
    doc.click("[data-testid=care-conversation]")
    doc.locator(".el-select-dropdown__item").filter(has_text="李娜").click()
    doc.click("[data-testid=care-take-李娜]")
    expect(doc.locator("[data-testid=care-candidates]")).to_contain_text("已接诊")
    expect(doc.locator("[data-testid=care-reason]").filter(has_text="会话接诊")).to_have_count(1)
    rel = CareRelationship.objects.get(reason="conversation")
    assert (rel.patient.name, rel.staff.username, rel.ended_at) == ("李娜", "doctor", None)
    expect(doc.locator("[data-testid=care-relationships] .el-tag").filter(has_text="有效")).to_have_count(4)
    _settle(doc)
    doc.screenshot(path=str(shots / "demo_seed_care.png"), full_page=True)
    assert not RAW.search(_visible_text(doc)), _visible_text(doc)
    assert errors == []
    ctx.close()


def test_fresh_demo_patient_home_has_the_psych_entry_and_a_todo(live_server_url: str, browser: Any) -> None:
    from tests.e2e.helpers import PATIENT_PHONE, patient_login

    _seeded_doctor()
    ctx = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", **PATIENT_PHONE)
    page = ctx.new_page()
    patient_login(page, live_server_url, "13800138001")
    expect(page.locator("[data-testid=psych-entry]")).to_contain_text("心理测评")
    todo = page.locator("[data-testid=todo-item][data-kind='psych.scales_to_fill']")
    expect(todo).to_contain_text("待填写的心理量表（1）")
    expect(todo).to_contain_text("GAD-7")
    # The other modules' demo data wait here too (a parcel to collect, a prescription to pay):
    # the badge counts every to-do the strip lists.
    items = page.locator("[data-testid=todo-item]")
    expect(items.first).to_be_visible()
    count = str(items.count())
    assert int(count) >= 2, count
    expect(page.locator("[data-testid=todo-badge]")).to_have_text(count)
    expect(page.locator(".uni-tabbar__item").nth(0).locator(".uni-tabbar__badge")).to_have_text(count)
    # The care team's chat has history and the unread count is on the 消息 tab.
    expect(page.locator(".uni-tabbar__item").nth(1).locator(".uni-tabbar__badge")).not_to_have_count(0)
    page.wait_for_timeout(300)
    page.screenshot(path=str(Path(settings.VAR_DIR) / "demo_seed_patient_home.png"))
    ctx.close()
