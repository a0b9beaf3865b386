"""Chromium, patient app at 390x844: issue 10's patient-side defects, each shown
on the page as a patient sees it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from playwright.sync_api import expect

from apps.accounts import services as accounts
from apps.accounts.models import ConsentRecord
from tests.conftest import make_patient
from tests.e2e.helpers import patient_login

pytestmark = pytest.mark.e2e

MOBILE = {"width": 390, "height": 844}


def _phone(browser: Any, tz: str = "Asia/Shanghai") -> Any:
    ctx = browser.new_context(locale="zh-CN", timezone_id=tz, viewport=MOBILE, is_mobile=True, has_touch=True)
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
