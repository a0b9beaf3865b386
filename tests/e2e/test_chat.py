"""The chat views: a doctor in the console and a patient in the H5 app talk live; the
patient's page goes offline while the doctor writes, comes back, resumes from its last
seq and shows every message exactly once, in order; read receipts reach the doctor."""

from __future__ import annotations

import base64
import random
from typing import Any

import pytest
from playwright.sync_api import expect

from apps.accounts.roles import Role
from apps.im.models import Member, Message
from apps.im.services import conversation_for_pair
from tests.conftest import make_patient, make_staff
from tests.e2e.helpers import console_login, patient_login

pytestmark = pytest.mark.e2e

# A 1x1 PNG (the server sniffs the content, not the name).
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def _context(browser: Any, width: int) -> tuple[Any, Any]:
    context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", viewport={"width": width, "height": 860})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.errors = errors
    return context, pg


def _texts(page: Any) -> list[str]:
    return page.locator("[data-testid=message-item] [data-testid=message-text]").all_inner_texts()


def _seqs(page: Any) -> list[int]:
    items = page.locator("[data-testid=message-item]")
    return [int(s) for s in items.evaluate_all("els => els.map(e => e.dataset.seq)") if s]


def _send(page: Any, text: str, selector: str) -> None:
    page.locator(selector).fill(text)
    # uni-h5's <input> passes typing to v-model at most every 100 ms; a person is slower.
    page.wait_for_timeout(150)
    page.click("[data-testid=chat-send]")


def test_doctor_and_patient_chat_live_and_resume_after_offline(live_server_url: str, browser: Any) -> None:
    doctor = make_staff(Role.DOCTOR, "chatdoc")
    # A fresh number each run: the SMS send cooldown lives in the shared cache for 60 s.
    phone = f"137{random.randint(0, 99_999_999):08d}"
    patient = make_patient(phone, "张三")
    conv = conversation_for_pair(staff=doctor.user, patient=patient.user)
    doc_ctx, doc = _context(browser, 1280)
    pat_ctx, pat = _context(browser, 414)
    console_input = "[data-testid=chat-input]"  # el-input puts the test id on the <textarea>
    h5_input = "[data-testid=chat-input] input"  # uni <input> renders <uni-input><input>

    try:
        # The doctor opens the conversation from the console's 消息 page and writes first.
        console_login(doc, live_server_url, "chatdoc", doctor)
        doc.click("[data-testid=menu-im]")
        item = doc.locator(f"[data-testid=conversation-item][data-conversation-id='{conv.pk}']")
        expect(item).to_be_visible()
        item.click()
        expect(doc.locator("[data-testid=chat-empty]")).to_be_visible()
        _send(doc, "您好，我是张医生，请问哪里不舒服？", console_input)
        first = doc.locator("[data-testid=message-item][data-seq='1']")
        expect(first.locator("[data-testid=message-status]")).to_have_attribute("data-status", "sent")
        expect(first.locator("[data-testid=read-receipt]")).to_have_text("未读")

        # The patient sees the unread conversation under the 消息 tab and opens it.
        patient_login(pat, live_server_url, phone)
        pat.locator(".uni-tabbar__item", has_text="消息").click()
        conv_item = pat.locator(f"[data-testid=conversation-item][data-conversation-id='{conv.pk}']")
        expect(conv_item.locator("[data-testid=unread-badge]")).to_have_text("1")
        expect(conv_item).to_contain_text("请问哪里不舒服")
        conv_item.click()
        expect(pat.locator("[data-testid=message-text]").first).to_have_text("您好，我是张医生，请问哪里不舒服？")
        # Reading it shows 已读 to the doctor.
        expect(first.locator("[data-testid=read-receipt]")).to_have_text("已读")

        # Typing shows on the other side, then the reply arrives live.
        pat.locator(h5_input).fill("头痛")
        expect(doc.locator("[data-testid=typing-indicator]")).to_be_visible()
        _send(pat, "头痛两天了，晚上更明显。", h5_input)
        expect(doc.locator("[data-testid=message-item][data-seq='2'] [data-testid=message-text]")).to_have_text(
            "头痛两天了，晚上更明显。"
        )
        expect(doc.locator("[data-testid=typing-indicator]")).to_have_count(0)
        mine = pat.locator("[data-testid=message-item][data-seq='2']")
        expect(mine.locator("[data-testid=read-receipt]")).to_have_text("已读")  # the doctor has it open

        # The patient's network goes away while the doctor writes three messages.
        pat_ctx.set_offline(True)
        expect(pat.locator("[data-testid=chat-offline]")).to_be_visible()
        offline = ["有没有发热？", "最近睡眠怎么样？", "请把血压测一下发给我。"]
        for text in offline:
            _send(doc, text, console_input)
        for seq in (3, 4, 5):
            status = doc.locator(f"[data-testid=message-item][data-seq='{seq}'] [data-testid=message-status]")
            expect(status).to_have_attribute("data-status", "sent")
        # The patient writes too: it waits in the outbox.
        reply = "刚才没信号，我在。"
        _send(pat, reply, h5_input)
        pending = pat.locator("[data-testid=message-item][data-seq=''] [data-testid=message-status]")
        expect(pending).to_have_attribute("data-status", "pending")
        pat.wait_for_timeout(1000)
        assert not any(t in _texts(pat) for t in offline), "offline page got messages"

        # Back online: the page reconnects, resumes from seq 2 and shows each message once, in
        # order; the outbox sends the reply once (seq 6, after the doctor's three).
        pat_ctx.set_offline(False)
        expect(pat.locator("[data-testid=message-item][data-seq='6']")).to_be_visible(timeout=15000)
        expect(pat.locator("[data-testid=chat-offline]")).to_have_count(0)
        expected = ["您好，我是张医生，请问哪里不舒服？", "头痛两天了，晚上更明显。", *offline, reply]
        assert _texts(pat) == expected
        assert _seqs(pat) == [1, 2, 3, 4, 5, 6]
        expect(pat.locator("[data-testid=message-item][data-seq='']")).to_have_count(0)

        # The doctor gets the reply live and sees the patient read everything.
        expect(doc.locator("[data-testid=message-item][data-seq='6'] [data-testid=message-text]")).to_have_text(reply)
        last = doc.locator("[data-testid=message-item][data-seq='5'] [data-testid=read-receipt]")
        expect(last).to_have_text("已读", timeout=10000)
        assert _texts(doc) == expected
        assert _seqs(doc) == [1, 2, 3, 4, 5, 6]

        # The patient recalls the reply (within 2 minutes): both sides show 消息已撤回.
        pat.locator("[data-testid=message-item][data-seq='6'] [data-testid=message-recall]").click()
        for pg in (pat, doc):
            recalled = pg.locator("[data-testid=message-item][data-seq='6'] [data-testid=message-recalled]")
            expect(recalled).to_be_visible()
        expect(doc.locator("[data-testid=message-item][data-seq='6']")).to_contain_text("消息已撤回")

        # Still live after the resume: the doctor sends an image, the patient sees it.
        doc.set_input_files(
            "[data-testid=chat-image-input]", files=[{"name": "舌苔.png", "mimeType": "image/png", "buffer": PNG}]
        )
        image = pat.locator("[data-testid=message-item][data-seq='8'][data-kind='image']")
        expect(image.locator("[data-testid=message-image]")).to_be_visible()

        assert Message.objects.filter(conversation=conv).count() == 8  # 6 + the recall event + the image
        assert Message.objects.filter(conversation=conv, client_msg_id__startswith="c").count() == 7
        assert Member.objects.get(conversation=conv, user=patient.user).read_seq >= 6
        assert doc.errors == [] and pat.errors == []
    finally:
        doc_ctx.close()
        pat_ctx.close()
