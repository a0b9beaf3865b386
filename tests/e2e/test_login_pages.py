"""Chromium logs into the patient H5 app and the staff console against a running server."""

from __future__ import annotations

import re
import urllib.request
from typing import Any

import pyotp
import pytest
from playwright.sync_api import expect

from apps.accounts.models import AuthToken, SandboxOutbox
from apps.accounts.roles import Role
from hub import crypto
from tests.conftest import STRONG, make_staff

pytestmark = pytest.mark.e2e


def test_console_login_with_totp(live_server_url: str, page: Any) -> None:
    doctor = make_staff(Role.DOCTOR, "e2edoc")
    page.goto(f"{live_server_url}/console/")
    page.fill("[data-testid=login-username]", "e2edoc")
    page.fill("[data-testid=login-password]", "wrong-Pass-1")
    page.click("[data-testid=login-submit]")
    expect(page.locator("[data-testid=login-error]")).to_contain_text("用户名或密码错误")

    page.fill("[data-testid=login-password]", STRONG)
    page.click("[data-testid=login-submit]")
    otp = page.locator("[data-testid=login-otp]")
    expect(otp).to_be_visible()
    otp.fill(pyotp.TOTP(doctor.totp_secret).now())
    page.click("[data-testid=login-submit]")
    # Signed in, the home page is the workbench with the user's name and role.
    expect(page.locator("[data-testid=header-user]")).to_contain_text("测试doctor")
    expect(page.locator("[data-testid=workbench-role]")).to_contain_text("医生")
    expect(page.locator("[data-testid=ws-status]")).to_contain_text("已连接")
    assert AuthToken.objects.filter(user=doctor.user, revoked_at__isnull=True).count() == 1
    assert page.errors == []


def test_console_session_ends_when_the_account_is_disabled(live_server_url: str, page: Any) -> None:
    from apps.accounts import services

    nurse = make_staff(Role.NURSE, "e2enurse")
    admin = make_staff(Role.SYSADMIN, "e2eadmin")
    page.goto(f"{live_server_url}/console/")
    page.fill("[data-testid=login-username]", "e2enurse")
    page.fill("[data-testid=login-password]", STRONG)
    page.click("[data-testid=login-submit]")
    expect(page.locator("[data-testid=ws-status]")).to_contain_text("已连接")
    # The system admin disables the account through the API of the running server.
    token = services.token_issue(user=admin.user).raw
    request = urllib.request.Request(
        f"{live_server_url}/api/v1/admin/users/{nurse.user.pk}/disable",
        method="POST",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=5) as r:
        assert r.status == 200
    # The server closes the socket with 4010 and the console returns to the login page.
    expect(page).to_have_url(re.compile(r"#/login"), timeout=5000)


def test_patient_h5_sms_login(live_server_url: str, page: Any) -> None:
    phone = "13612345678"
    page.goto(f"{live_server_url}/h5/")
    page.locator("[data-testid=phone-input] input").fill(phone)
    page.click("[data-testid=send-code]")
    phone_hash = crypto.lookup_hash(phone, context="phone")
    for _ in range(50):
        sms = SandboxOutbox.objects.filter(recipient_hash=phone_hash).order_by("-id").first()
        if sms:
            break
        page.wait_for_timeout(100)
    assert sms is not None, "no SMS was sent"
    code = re.search(r"验证码为(\d{6})", sms.body).group(1)  # type: ignore[union-attr]
    page.locator("[data-testid=code-input] input").fill(code)
    page.click("[data-testid=agree-checkbox]")
    page.click("[data-testid=login-button]")
    expect(page.locator("[data-testid=me-name]")).to_contain_text("用户5678")
    expect(page.locator("[data-testid=me-phone]")).to_contain_text("136****5678")
    expect(page.locator("[data-testid=ws-status]")).to_contain_text("已连接")
    assert page.errors == []
