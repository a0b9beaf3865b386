"""Chromium, the console's 我的排班 (issue 13): a doctor with no slots sees what to do,
publishes a week template (Mon / Wed / Fri mornings for two weeks from next Monday, Beijing time), sees
the slots as cards; the same template again is refused whole with its conflicts listed
(nothing written); a patient books one slot; the doctor 停诊 it after a confirm that
says the booking is cancelled and refunded, and the card shows 已停诊."""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from apps.consultations.models import Department, DoctorProfile, Slot, Visit
from tests.consultations.test_booking_support import Doc, book, booker
from tests.e2e.conftest import SCREENSHOTS
from tests.e2e.helpers import console_login
from tests.pharmacy.conftest import make_doctor

pytestmark = pytest.mark.e2e
BJ = ZoneInfo("Asia/Shanghai")
ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def _shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(400)  # dialogs finish their entrance transitions
    page.screenshot(path=str(SCREENSHOTS / f"test_consult_schedule-{name}.png"))


def test_a_doctor_publishes_a_week_template_sees_it_and_closes_a_booked_slot(
    live_server_url: str, console_page: Any
) -> None:
    url, page = live_server_url, console_page
    persona = make_doctor("e2eschedoc")
    dept = Department.objects.create(code="cardio", name="心内科")
    profile = DoctorProfile.objects.create(
        user=persona.user, department=dept, price_text_fen=3000, price_video_fen=5000
    )
    console_login(page, url, "e2eschedoc", persona)
    page.click("[data-testid=menu-consult-schedule]")
    expect(page.locator("[data-testid=schedule-empty]")).to_contain_text("按周模板排班")

    page.click("[data-testid=schedule-next]")  # next week: every day of it is ahead
    page.click("[data-testid=schedule-add-template]")
    dialog = page.locator("[data-testid=schedule-template-dialog]")
    expect(dialog).to_be_visible()
    expect(page.locator("[data-testid=schedule-template-preview]")).to_contain_text("周一、周三、周五 09:00–11:30")
    _shot(page, "template-dialog")
    page.click("[data-testid=schedule-template-submit]")
    cards = page.locator("[data-testid=schedule-slot]")
    expect(cards).to_have_count(3)
    expect(dialog).to_be_hidden()
    slots = list(Slot.objects.filter(doctor=profile).order_by("starts_at"))
    assert [s.starts_at.astimezone(BJ).isoweekday() for s in slots] == [1, 3, 5, 1, 3, 5]  # two weeks (the default)
    assert {(s.starts_at.astimezone(BJ).hour, s.capacity) for s in slots} == {(9, 10)}
    expect(cards.first.locator("[data-testid=schedule-slot-time]")).to_have_text("09:00–11:30")
    expect(cards.first.locator("[data-testid=schedule-slot-count]")).to_have_text("已约 0/10")

    # The same template again: refused whole, the six conflicts listed, nothing written.
    page.click("[data-testid=schedule-add-template]")
    page.click("[data-testid=schedule-template-submit]")
    expect(page.locator("[data-testid=schedule-template-conflicts] li")).to_have_count(6)
    expect(page.locator("[data-testid=schedule-template-error]")).to_contain_text("重叠")
    _shot(page, "template-conflicts")
    assert Slot.objects.filter(doctor=profile).count() == 6
    dialog.get_by_role("button", name="取消").click()
    expect(dialog).to_be_hidden()

    # A patient books the Wednesday slot; the doctor refreshes and sees it.
    wednesday = slots[1]
    visit = book(booker(), Doc(persona=persona, profile=profile), wednesday)
    page.get_by_role("button", name="刷新").click()
    card = cards.nth(1)
    expect(card.locator("[data-testid=schedule-slot-count]")).to_have_text("已约 1/10")
    _shot(page, "week")
    text = page.locator("body").inner_text()
    assert not ISO_TIME.search(text), ISO_TIME.search(text)

    card.locator("[data-testid=schedule-slot-close]").click()
    box = page.locator(".el-message-box")
    expect(box).to_contain_text("1 位患者预约")
    expect(box).to_contain_text("全额原路退回")
    _shot(page, "close-confirm")
    box.get_by_role("button", name="确认停诊").click()
    expect(card.locator("[data-testid=schedule-slot-closed]")).to_be_visible()
    expect(card.locator("[data-testid=schedule-slot-close]")).to_have_count(0)
    _shot(page, "closed")
    wednesday.refresh_from_db()
    visit.refresh_from_db()
    assert wednesday.status == Slot.Status.CLOSED and visit.status == Visit.Status.CANCELLED
    assert Slot.objects.filter(doctor=profile, status=Slot.Status.OPEN).count() == 5
    assert not page.errors
