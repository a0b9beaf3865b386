"""The console's psych alert pop-up keeps off the header (退出登录 and the
connection status stay uncovered and clickable) and off the alert list's 确认
button, and counts down to the alert's escalation deadline. The report's trend is drawn by the chart wrapper.
Screenshots to /tmp/ui-*.png."""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.request
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from apps.accounts.services import token_issue
from apps.im import services as im_services
from apps.psych import services as psych
from apps.psych.models import Alert, Result
from tests.conftest import make_patient
from tests.e2e.helpers import console_login
from tests.psych.conftest import add_patient, make_doctor

pytestmark = pytest.mark.e2e


def _box(page: Any, selector: str) -> dict[str, float]:
    box = page.locator(selector).first.element_handle().bounding_box()
    assert box is not None, selector
    return box


def _intersects(a: dict[str, float], b: dict[str, float]) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


def _submit_as_patient(url: str, token: str, assignment_id: int) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{url}/api/v1/psych/assignments/{assignment_id}/submit",
        data=b"{}",
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=15) as r:
        return json.loads(r.read())


@pytest.mark.parametrize("viewport", [{"width": 1400, "height": 900}, {"width": 1024, "height": 700}])
def test_alert_popup_leaves_the_header_usable_and_counts_down(
    live_server_url: str, browser: Any, viewport: dict[str, int]
) -> None:
    doctor = make_doctor("popdoc")
    account = make_patient("13612340093", "王芳")
    me = add_patient(account, "王芳")
    im_services.conversation_for_pair(staff=doctor.user, patient=account.user)
    due = timezone.now() + dt.timedelta(days=3)
    (earlier,) = psych.assignments_create(doctor=doctor.user, patient_id=me.pk, scale_codes=["PHQ-9"], due_at=due)
    psych.assignment_submit(user=account.user, assignment_id=earlier.pk, answers={n: 1 for n in range(1, 9)} | {9: 0})
    (a,) = psych.assignments_create(doctor=doctor.user, patient_id=me.pk, scale_codes=["PHQ-9"], due_at=due)
    psych.answers_save(user=account.user, assignment_id=a.pk, answers={n: (1 if n == 9 else 0) for n in range(1, 10)})

    ctx = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", viewport=viewport)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    console_login(page, live_server_url, "popdoc", doctor)
    expect(page.locator("[data-testid=header-ws-status]")).to_have_attribute("data-status", "connected")

    # The patient submits (over the API): item 9 raises an alert, pushed live to the doctor.
    _submit_as_patient(live_server_url, token_issue(user=account.user).raw, a.pk)
    popup = page.locator(".psych-alert-notification")
    expect(popup).to_contain_text("王芳")
    page.wait_for_timeout(500)  # the slide-in transition ends

    # Nothing of the header is covered: the pop-up starts below it and misses logout and status.
    pop, header = _box(page, ".psych-alert-notification"), _box(page, ".header")
    for selector in ("[data-testid=logout]", "[data-testid=header-ws-status]"):
        assert not _intersects(pop, _box(page, selector)), selector
    assert pop["y"] >= header["y"] + header["height"]
    # (trial: Playwright's actionability checks, including that the button receives the click)
    page.locator("[data-testid=logout]").click(trial=True, timeout=3000)
    logout = _box(page, "[data-testid=logout]")
    hit = page.evaluate(
        "([x, y]) => !!document.elementFromPoint(x, y).closest('[data-testid=logout]')",
        [logout["x"] + logout["width"] / 2, logout["y"] + logout["height"] / 2],
    )
    assert hit is True

    # The countdown to escalation: present, in words, and going down.
    countdown = popup.locator("[data-testid=psych-alert-countdown]")
    expect(countdown).to_contain_text("后升级至值班医生")
    assert re.search(r"\d+ 分 \d+ 秒后升级至值班医生", countdown.inner_text())
    deadline = Alert.objects.get().ack_deadline
    local = timezone.localtime(deadline, timezone=dt.timezone(dt.timedelta(hours=8)))
    expect(countdown).to_contain_text(f"北京时间 {local:%H:%M:%S} 前确认")
    first = int(countdown.get_attribute("data-seconds-left") or "0")
    assert 0 < first <= 30 * 60
    page.wait_for_timeout(2500)
    second = int(countdown.get_attribute("data-seconds-left") or "0")
    assert 0 < second < first
    page.screenshot(path=f"/tmp/ui-console-alert-popup-{viewport['width']}.png")

    # The clinical report's trend: the chart and the scores under it.
    result = Result.objects.get(assignment=a)
    page.goto(f"{live_server_url}/console/#/psych/results/{result.pk}")
    expect(page.locator("[data-testid=psych-report-band]")).to_be_visible()
    expect(page.locator("[data-testid=line-chart] svg")).to_be_visible()
    points = page.locator("[data-testid=psych-trend-point]")
    expect(points).to_have_count(2)
    assert [points.nth(i).get_attribute("data-score") for i in range(2)] == ["8", "1"]
    page.locator("[data-testid=psych-trend]").scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    page.screenshot(path=f"/tmp/ui-console-report-trend-{viewport['width']}.png", full_page=True)

    # On the alert list the row's 确认 button is not under the pop-up either.
    page.click("[data-testid=menu-psych-alerts]")
    expect(page.locator("[data-testid=psych-alert-ack]")).to_have_count(1)
    assert not _intersects(_box(page, ".psych-alert-notification"), _box(page, "[data-testid=psych-alert-ack]"))
    page.locator("[data-testid=psych-alert-ack]").click(trial=True, timeout=3000)
    page.wait_for_timeout(400)  # the status tag's transition
    page.screenshot(path=f"/tmp/ui-console-alert-list-{viewport['width']}.png")

    # And the logout button really works with the pop-up still open.
    expect(popup).to_be_visible()
    page.click("[data-testid=logout]")
    expect(page.locator("[data-testid=login-username]")).to_be_visible()
    assert errors == []
    ctx.close()
