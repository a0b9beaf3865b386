"""Chromium, issue 13's whole path in one run: a patient books a video visit and pays in
the H5 app, waits and sees their queue position change live, the doctor calls them in
from the console's board, both see and hear each other with the visit's chat beside the
video, the countdown warns (1 minute left) and the server ends the session by itself at
the deadline (nobody presses anything); the patient's summary then shows the diagnosis
and the prescription written in the visit."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from apps.accounts.services import token_issue
from apps.consultations.models import Visit
from apps.im.models import Conversation
from apps.pharmacy import services as rx_services
from apps.pharmacy.rules import DraftInput, LineInput
from apps.timed.models import TimedSession
from tests.conftest import STRONG, add_patient, make_patient
from tests.e2e.conftest import _screenshots
from tests.e2e.helpers import console_login, patient_login
from tests.e2e.test_consult_patient import _api, _book_and_pay_through_api, _his_record, _seed
from tests.e2e.test_patient_orders import start_shop_server
from tests.e2e.test_visit_video import C_AUDIO, C_REMOTE, P_AUDIO, P_REMOTE, plays
from tests.pharmacy.conftest import PIN, enrol

pytestmark = pytest.mark.e2e

PHONE = "13612340481"
PHONE_AHEAD = "13612340482"
SESSION_SECONDS = 80  # the video visit's length on this server: the 1-minute warning after 20 s


@pytest.fixture
def visit_server(transactional_db: Any, settings: Any, tmp_path: Path) -> Iterator[str]:
    yield from start_shop_server(settings, tmp_path, CONSULT_SESSION_SECONDS_VIDEO=str(SESSION_SECONDS))


def test_book_pay_wait_call_video_chat_countdown_hard_stop_summary(
    visit_server: str, patient_page: Any, console_page: Any
) -> None:
    url, page, doc = visit_server, patient_page, console_page
    seed = _seed()
    slot = seed["slot"]
    me = add_patient(make_patient(PHONE, "孙丽"), "孙丽")
    _his_record(me, "原发性高血压（2级）")
    ahead_account = make_patient(PHONE_AHEAD, "周强")
    ahead_patient = add_patient(ahead_account, "周强")
    ahead_token = token_issue(user=ahead_account.user).raw
    ahead = _book_and_pay_through_api(url, ahead_token, ahead_patient, slot, _his_record(ahead_patient, "高血压"))

    # --- the patient books the video visit and pays in the app ----------------------------------------
    patient_login(page, url, PHONE)
    page.goto(f"{url}/h5/#/pages/consult/doctor?id={seed['profile'].pk}")
    page.click("[data-testid=doctor-kind-video]")
    page.locator("[data-testid=slot-chip]").first.click()
    page.click("[data-testid=doctor-book]")
    page.locator("[data-testid=book-complaint] textarea").fill("高血压复诊，想调整用药")
    page.click("[data-testid=book-next-1]")
    page.locator("[data-testid=prior-record]", has_text="原发性高血压（2级）").click()
    page.click("[data-testid=book-next-2]")
    page.click("[data-testid=book-agree]")
    page.click("[data-testid=book-submit]")
    expect(page.locator("[data-testid=pay-sheet]")).to_be_visible(timeout=15000)
    page.click("[data-testid=pay-confirm]")
    expect(page.locator("[data-testid=pay-success]")).to_contain_text("支付成功", timeout=20000)
    visit = Visit.objects.get(patient=me)
    for _ in range(100):  # the paid notice reaches the visit through commerce's fulfilment, just after
        visit.refresh_from_db()
        if visit.status == Visit.Status.WAITING:
            break
        page.wait_for_timeout(100)
    assert visit.status == Visit.Status.WAITING
    page.go_back()

    # --- waiting: position 2, then 1 when the visit ahead is cancelled (live) ------------------------
    position = page.locator("[data-testid=queue-position]")
    expect(position).to_have_text("2")
    _api(f"{url}/api/v1/consultations/visits/{ahead['id']}/cancel", ahead_token)
    expect(position).to_have_text("1", timeout=15000)
    expect(page.locator("[data-testid=queue-text]")).to_contain_text("前面没有人了")

    # --- the doctor: identity step-up and acceptance, then 叫号 from the console's board -------------
    base = f"{url}/api/v1/consultations/visits/{visit.public_id}"
    doc_token = token_issue(user=seed["doctor"].user).raw
    _api(f"{base}/step-up", doc_token, body={"method": "password", "password": STRONG})
    _api(f"{base}/accept", doc_token, body={"confirm_followup": True})
    console_login(doc, url, seed["doctor"].user.username, seed["doctor"])
    doc.goto(f"{url}/console/#/consultations")
    card = doc.locator("[data-testid=consult-board-waiting] [data-testid=consult-visit-card]", has_text="孙")
    card.locator("[data-testid=consult-call]").click()
    expect(doc.locator("[data-testid=consult-room]")).to_have_attribute("data-status", "in_progress", timeout=15000)

    # --- both in the visit: video each way, the chat beside it, the countdown running ---------------
    expect(page.locator("[data-testid=chat-room]")).to_be_visible(timeout=15000)
    expect(doc.locator("[data-testid=chat-room]")).to_be_visible()
    plays(page, P_REMOTE, P_AUDIO)  # the patient sees and hears the doctor
    plays(doc, C_REMOTE, C_AUDIO)  # the doctor sees and hears the patient
    page.locator("[data-testid=chat-input] input").fill("医生您好，我按时吃药了")
    page.click("[data-testid=chat-send]")
    expect(doc.locator("[data-testid=message-list]")).to_contain_text("医生您好，我按时吃药了", timeout=10000)
    expect(page.locator("[data-testid=visit-countdown-time]")).to_have_text(re.compile(r"^\d+:\d\d$"))
    expect(doc.locator("[data-testid=consult-countdown-clock]")).to_have_text(re.compile(r"^\d{2}:\d{2}$"))
    _screenshots.shoot(page, "whole-visit-patient-")
    _screenshots.shoot(doc, "whole-visit-doctor-")

    # The doctor writes and signs the record and a prescription during the visit.
    enrol(seed["doctor"], PIN)
    _api(
        f"{base}/record",
        doc_token,
        method="PUT",
        body={
            "chief_complaint": "高血压复诊",
            "present_history": "血压控制欠佳",
            "icd10_code": "I10",
            "diagnosis": "原发性高血压（2级）",
            "advice": "低盐饮食，每日监测血压",
        },
    )
    _api(f"{base}/record/sign", doc_token, body={"pin": PIN})
    rx = rx_services.prescription_create(
        doctor=seed["doctor"].user,
        patient_id=me.pk,
        draft=DraftInput(
            diagnosis="原发性高血压（2级）",
            icd10_code="I10",
            lines=[
                LineInput(
                    drug_code="AMLO-5", dose=Decimal("5"), frequency="qd", route="po", days=7, quantity=Decimal("1")
                )
            ],
        ),
        source_type="consultation",
        source_id=visit.public_id,
    )
    rx_services.prescription_sign(doctor=seed["doctor"].user, prescription_id=rx.pk, pin=PIN)
    rx_services.prescription_submit(doctor=seed["doctor"].user, prescription_id=rx.pk)

    # --- the countdown warns at 1 minute left, on both sides ------------------------------------------
    expect(page.locator("[data-testid=visit-warning]")).to_contain_text("1", timeout=(SESSION_SECONDS - 40) * 1000)
    expect(page.locator("[data-testid=visit-countdown]")).to_have_attribute("data-tone", "danger", timeout=10000)
    expect(doc.locator("[data-testid=consult-countdown]")).to_have_attribute("data-level", "red", timeout=10000)
    _screenshots.shoot(page, "whole-visit-warning-")

    # --- nobody ends it: the server does, at the deadline ---------------------------------------------
    expect(page.locator("[data-testid=visit-ended]")).to_contain_text("问诊已结束", timeout=75000)
    expect(doc.locator("[data-testid=consult-room]")).to_have_attribute("data-status", "ended", timeout=10000)
    visit.refresh_from_db()
    session = TimedSession.objects.get(pk=visit.timed_session_id)
    assert visit.status == Visit.Status.ENDED and visit.end_reason == "deadline"
    assert session.end_reason == "deadline" and session.ended_at is not None
    assert session.ended_at >= session.deadline  # ended by the deadline (its lateness is measured by bench S5)
    assert Conversation.objects.get(pk=visit.conversation_id).closed_at is not None
    _screenshots.shoot(page, "whole-visit-ended-")

    # --- the summary: the diagnosis and the prescription of the visit ---------------------------------
    page.click("[data-testid=visit-open-summary]")
    expect(page.locator("[data-testid=summary-diagnosis]")).to_contain_text("原发性高血压（2级）")
    expect(page.locator("body")).to_contain_text("氨氯地平")
    _screenshots.shoot(page, "whole-visit-summary-")
    assert page.errors == []
