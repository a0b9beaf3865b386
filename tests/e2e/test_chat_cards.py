"""Chromium: a scale card in chat reads as Chinese on both sides (issue 10, defect 2).

The doctor assigns PHQ-9 and GAD-7; the card in the patient's chat and in the
console shows labelled rows (就诊人, 量表, 截止时间 in Beijing time) and none of
the card's machine fields (batch id, keys, the page path, an ISO timestamp).
Tapping it on the patient side opens the list of scales to fill; clicking it in
the console opens that patient's 心理测评."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from apps.im import services as im_services
from apps.psych import services as psych
from tests.conftest import make_patient
from tests.e2e.helpers import console_login, patient_login
from tests.psych.conftest import add_patient, make_doctor

pytestmark = pytest.mark.e2e

PHONE = "13612340188"
RAW = re.compile(r"batch|patient_name|scales|assignment_ids|/pages/|\d{4}-\d\d-\d\dT|\+0[08]:00|量表 量表")


def test_scale_card_reads_as_chinese_and_opens_the_page(live_server_url: str, browser: Any, page: Any) -> None:
    doctor = make_doctor("e2ecard")
    account = make_patient(PHONE, "韩梅梅")
    me = add_patient(account, "韩梅梅")
    conv = im_services.conversation_for_pair(staff=doctor.user, patient=account.user)
    # 18:00 Beijing time three Beijing days from now: never 今天/明天 whatever the hour the suite runs at.
    bj = dt.timezone(dt.timedelta(hours=8))
    today = timezone.now().astimezone(bj).date()
    beijing = dt.datetime.combine(today + dt.timedelta(days=3), dt.time(18, 0), tzinfo=bj)
    due = beijing.astimezone(dt.UTC)
    psych.assignments_create(doctor=doctor.user, patient_id=me.pk, scale_codes=["PHQ-9", "GAD-7"], due_at=due)
    shown = (
        f"{beijing.month}月{beijing.day}日 18:00前"
        if beijing.year == today.year
        else f"{beijing.year}年{beijing.month}月{beijing.day}日前"
    )

    # --- patient ------------------------------------------------------------------------------
    patient_login(page, live_server_url, PHONE)
    page.goto(f"{live_server_url}/h5/#/pages/im/chat?id={conv.pk}")
    card = page.locator("[data-testid=message-card][data-card-type=scale_assignment]")
    expect(card).to_be_visible()
    expect(card.locator("[data-testid=message-card-title]")).to_have_text("请完成心理量表")
    text = card.inner_text()
    assert "韩梅梅" in text and "PHQ-9、GAD-7" in text, text
    assert shown in text, text
    assert not RAW.search(text), text
    expect(card.locator("[data-testid=message-card-action]")).to_contain_text("查看并填写")
    card.click()
    expect(page.locator("[data-testid=psych-item]")).to_have_count(2)

    # --- doctor -------------------------------------------------------------------------------
    ctx = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", viewport={"width": 1440, "height": 900})
    doc = ctx.new_page()
    console_login(doc, live_server_url, "e2ecard", doctor)
    doc.goto(f"{live_server_url}/console/#/im?c={conv.pk}")
    dcard = doc.locator("[data-testid=message-card][data-card-type=scale_assignment]")
    expect(dcard).to_be_visible()
    dtext = dcard.inner_text()
    assert "韩梅梅" in dtext and "PHQ-9、GAD-7" in dtext, dtext
    assert not RAW.search(dtext), dtext
    dcard.click()
    expect(doc.locator("[data-testid=psych-assignments]")).to_contain_text("GAD-7")
    expect(doc.locator("[data-testid=psych-assignments]")).to_contain_text("PHQ-9")
    ctx.close()
