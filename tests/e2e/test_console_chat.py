"""Chromium: the console chat as a doctor uses it all day (issue 10, defect 7):
the patient's context beside the conversation, titles without one's own name,
a conversation opened while offline loads its history once back online, a
failed refresh says so, and the reconnect tag fits the header."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from apps.im import services as im_services
from tests.conftest import make_patient
from tests.e2e.helpers import console_login, patient_login
from tests.psych.conftest import add_patient, make_doctor

pytestmark = pytest.mark.e2e


def test_console_chat_context_titles_offline_history_and_refresh_errors(live_server_url: str, browser: Any) -> None:
    doctor = make_doctor("e2echat7")
    account = make_patient("13612340207", "孙丽")
    add_patient(account, "孙丽")
    conv = im_services.conversation_for_pair(staff=doctor.user, patient=account.user)
    for i, text in enumerate(["医生您好，我想咨询复查的事", "最近血压有点高"]):
        im_services.message_send(
            conversation_id=conv.pk, sender=account.user, kind="text", body={"text": text}, client_msg_id=f"p{i}"
        )

    ctx = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", viewport={"width": 1440, "height": 900})
    doc = ctx.new_page()
    console_login(doc, live_server_url, "e2echat7", doctor)
    doc.click("[data-testid=menu-im]")
    item = doc.locator(f"[data-testid=conversation-item][data-conversation-id='{conv.pk}']")
    expect(item).to_contain_text("孙丽")
    expect(item).not_to_contain_text(doctor.user.display_name)  # one's own name is not the title

    # Offline: the refresh fails visibly; a conversation opened now has no history yet ...
    ctx.set_offline(True)
    expect(doc.locator("[data-testid=header-ws-status]")).not_to_have_attribute("data-status", "connected")
    doc.click("[data-testid=conversations-refresh]")
    expect(doc.locator("[data-testid=conversations-error]")).to_contain_text("会话刷新失败")
    item.click()
    expect(doc.locator("[data-testid=chat-offline]")).to_be_visible()
    expect(doc.locator("[data-testid=chat-load-error]")).to_be_visible()
    # ... and the reconnect tag is whole, inside the header.
    tag, header = doc.locator("[data-testid=chat-offline]").bounding_box(), doc.locator(".chat__header").bounding_box()
    assert tag and header and tag["x"] + tag["width"] <= header["x"] + header["width"] + 0.5
    assert doc.locator("[data-testid=chat-offline]").evaluate("e => e.scrollWidth <= e.clientWidth + 1")
    doc.screenshot(path="/tmp/console-chat-offline.png")

    # Back online: the socket reconnects and the history loads without a click.
    ctx.set_offline(False)
    expect(doc.locator("[data-testid=header-ws-status]")).to_have_attribute("data-status", "connected", timeout=40_000)
    expect(doc.locator("[data-testid=message-text]").first).to_have_text("医生您好，我想咨询复查的事", timeout=15_000)
    doc.click("[data-testid=conversations-refresh]")
    expect(doc.locator("[data-testid=conversations-error]")).to_have_count(0)

    # The patient's context beside the chat, and their page one click away.
    context = doc.locator("[data-testid=patient-context-item][data-patient=孙丽]")
    expect(context).to_contain_text("本人")
    expect(context).to_contain_text("岁")
    doc.screenshot(path="/tmp/console-chat.png")
    doc.click("[data-testid=patient-context-open-孙丽]")
    expect(doc.locator("[data-testid=patient-name]")).to_have_text("孙丽")
    ctx.close()

    # The patient reads the doctor's name as the chat's title, never their own.
    pctx = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", viewport={"width": 390, "height": 844})
    pat = pctx.new_page()
    patient_login(pat, live_server_url, "13612340207")
    pat.locator(".uni-tabbar__item", has_text="消息").click()
    row = pat.locator(f"[data-testid=conversation-item][data-conversation-id='{conv.pk}']")
    title = row.locator("[data-testid=conversation-title]")
    expect(title).to_have_text(doctor.user.display_name)
    pctx.close()
