"""Chromium: the system administrator creates a doctor; the doctor's first
sign-in shows the QR code and secret, a code from it enrols the authenticator,
the initial password is changed, and the doctor reaches the workbench (issue 10,
defect 1). The sign-in page also says how many attempts remain (defect 10)."""

from __future__ import annotations

import re
import time
from typing import Any

import pyotp
import pytest
from playwright.sync_api import expect

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from tests.conftest import make_staff
from tests.e2e.helpers import console_login

pytestmark = pytest.mark.e2e
NEW_PASSWORD = "Heart-Ward-42!"


def _desktop(browser: Any) -> tuple[Any, Any]:
    ctx = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", viewport={"width": 1440, "height": 900})
    return ctx, ctx.new_page()


def test_a_new_doctor_enrols_totp_at_first_sign_in_then_reaches_the_workbench(
    live_server_url: str, browser: Any
) -> None:
    admin = make_staff("sysadmin", "e2eadmin")
    ctx, page = _desktop(browser)
    console_login(page, live_server_url, "e2eadmin", admin)
    page.click("[data-testid=menu-admin-users]")
    page.click("[data-testid=users-create]")
    page.fill("[data-testid=create-username]", "newdoctor")
    page.fill("[data-testid=create-display-name]", "周医生")
    page.click("[data-testid=create-role]")
    page.locator(".el-select-dropdown__item:visible").get_by_text("医生", exact=True).click()
    page.fill("[data-testid=create-department]", "心内科")
    page.click("[data-testid=create-submit]")
    initial = page.locator("[data-testid=initial-password]").inner_text().strip()
    expect(page.locator("[data-testid=created-totp-note]")).to_contain_text("首次登录")
    assert "otpauth" not in page.locator("body").inner_text()
    page.click("[data-testid=initial-password-close]")
    expect(page.locator("[data-testid=user-totp-state][data-user=newdoctor]")).to_have_text("待首次登录绑定")
    ctx.close()

    ctx, page = _desktop(browser)
    page.goto(f"{live_server_url}/console/")
    # A wrong password first: the page says how many attempts remain.
    page.fill("[data-testid=login-username]", "newdoctor")
    page.fill("[data-testid=login-password]", "Wrong-Pass-1")
    page.click("[data-testid=login-submit]")
    expect(page.locator("[data-testid=login-error]")).to_contain_text("还可尝试 4 次")
    page.fill("[data-testid=login-password]", initial)
    page.click("[data-testid=login-submit]")
    expect(page.locator("[data-testid=totp-enrol]")).to_be_visible()
    expect(page.locator("[data-testid=totp-qr]")).to_have_attribute("src", re.compile(r"^data:image/svg\+xml"))
    page.screenshot(path="/tmp/onboarding-enrol.png")
    secret = page.locator("[data-testid=totp-secret]").inner_text().replace(" ", "")
    totp = pyotp.TOTP(secret)
    page.fill("[data-testid=totp-code]", totp.now())
    page.click("[data-testid=totp-confirm]")
    # The authenticator is bound; the initial password must be changed next.
    expect(page.locator("[data-testid=change-password-dialog]")).to_be_visible()
    page.fill("[data-testid=pwd-new]", NEW_PASSWORD)
    page.fill("[data-testid=pwd-confirm]", NEW_PASSWORD)
    page.click("[data-testid=pwd-submit]")
    expect(page.locator("[data-testid=change-password-dialog]")).to_be_hidden()
    page.fill("[data-testid=login-password]", NEW_PASSWORD)
    page.click("[data-testid=login-submit]")
    otp = page.locator("[data-testid=login-otp]")
    expect(otp).to_be_visible()
    # Asked once, by the field's hint, and not as an error before anything is typed.
    expect(page.locator("[data-testid=login-otp-hint]")).to_be_visible()
    expect(page.locator("[data-testid=login-error]")).to_have_count(0)
    expect(page.locator(".el-form-item__error")).to_have_count(0)
    otp.fill(totp.at(time.time() + totp.interval))  # the enrolment's code is spent
    page.click("[data-testid=login-submit]")
    expect(page.locator("[data-testid=workbench]")).to_be_visible()
    expect(page.locator("[data-testid=workbench-role]")).to_have_text("医生")
    user = User.objects.get(username="newdoctor")
    assert user.totp_confirmed_at is not None
    assert AuditEvent.objects.filter(action="auth.totp_enrolled", actor_id=user.pk).count() == 1
    ctx.close()
