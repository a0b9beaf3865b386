"""The two apps' browser profiles, and logging a persona into the console or the
patient H5 app, as a person would."""

from __future__ import annotations

import re
from typing import Any

import pyotp
from playwright.sync_api import expect

from apps.accounts.models import SandboxOutbox
from hub import crypto
from tests.conftest import STRONG, Persona

# Every context: Chinese locale and the hospital's time zone.
BASE_CONTEXT: dict[str, Any] = {"locale": "zh-CN", "timezone_id": "Asia/Shanghai"}
# The patient app is a phone app: tested at 390x844 (a common phone's CSS size), with touch.
PATIENT_PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
# The console is a desktop app.
CONSOLE_DESKTOP: dict[str, Any] = {"viewport": {"width": 1440, "height": 900}}


def console_login(page: Any, url: str, username: str, persona: Persona) -> None:
    """Password, then the TOTP step when the role needs it; waits for the socket."""
    page.goto(f"{url}/console/")
    page.fill("[data-testid=login-username]", username)
    page.fill("[data-testid=login-password]", STRONG)
    page.click("[data-testid=login-submit]")
    if persona.totp_secret:
        otp = page.locator("[data-testid=login-otp]")
        expect(otp).to_be_visible()
        otp.fill(pyotp.TOTP(persona.totp_secret).now())
        page.click("[data-testid=login-submit]")
    expect(page.locator("[data-testid=ws-status]")).to_contain_text("已连接")


def sms_code(page: Any, phone: str) -> str:
    """The login code the SMS sandbox 'sent' to ``phone``."""
    phone_hash = crypto.lookup_hash(phone, context="phone")
    for _ in range(150):
        # (offline-message notices land in the same sandbox outbox)
        sms = SandboxOutbox.objects.filter(recipient_hash=phone_hash, body__contains="验证码").order_by("-id").first()
        if sms is not None:
            match = re.search(r"验证码为(\d{6})", sms.body)
            assert match is not None
            return match.group(1)
        page.wait_for_timeout(100)
    raise AssertionError("no SMS was sent")


def patient_login(page: Any, url: str, phone: str) -> None:
    page.goto(f"{url}/h5/")
    page.locator("[data-testid=phone-input] input").fill(phone)
    page.click("[data-testid=send-code]")
    page.locator("[data-testid=code-input] input").fill(sms_code(page, phone))
    page.click("[data-testid=agree-checkbox]")
    page.click("[data-testid=login-button]")
    expect(page.locator("[data-testid=ws-status]")).to_contain_text("已连接")
