"""The demo's login page shows the sandbox SMS under the code field only when
the server says the inbox is visible (embedded demo), never otherwise."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from playwright.sync_api import expect

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.e2e.helpers import sms_code
from tests.support.server import DaphneServer

pytestmark = pytest.mark.e2e

SHOTS = Path(settings.BASE_DIR) / "var" / "test"


@pytest.fixture(autouse=True)
def _orm_beside_playwright(monkeypatch: pytest.MonkeyPatch) -> None:
    # As in tests/e2e: the test's own ORM calls run beside Playwright's loop.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def _server(transactional_db: Any, **env: str) -> Iterator[str]:
    server = DaphneServer(MEDIA_EMBEDDED="1", MEDIA_RTMP_PORT="0", MEDIA_HTTP_PORT="0", **env).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def demo_url(transactional_db: Any) -> Iterator[str]:
    yield from _server(transactional_db, SANDBOX_INBOX_VISIBLE="1")


@pytest.fixture
def plain_url(transactional_db: Any) -> Iterator[str]:
    yield from _server(transactional_db, SANDBOX_INBOX_VISIBLE="0")


@pytest.fixture
def phone_page() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(
            locale="zh-CN", timezone_id="Asia/Shanghai", viewport={"width": 390, "height": 844}, device_scale_factor=2
        )
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.errors = errors
        try:
            yield page
        finally:
            browser.close()


def _send_code(page: Any, url: str, phone: str) -> str:
    page.goto(f"{url}/h5/")
    page.locator("[data-testid=phone-input] input").fill(phone)
    page.click("[data-testid=send-code]")
    return sms_code(page, phone)


def test_the_demo_login_page_shows_the_sandbox_sms(demo_url: str, phone_page: Any) -> None:
    page = phone_page
    code = _send_code(page, demo_url, "13612340001")
    shown = page.locator("[data-testid=sandbox-sms]")
    expect(shown).to_have_text(f"演示环境短信：验证码 {code}")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(3400)  # let the "验证码已发送" toast go
    page.screenshot(path=str(SHOTS / "login-sandbox-sms-390x844.png"))
    # The code shown logs in.
    page.locator("[data-testid=code-input] input").fill(code)
    page.click("[data-testid=agree-checkbox]")
    page.click("[data-testid=login-button]")
    expect(page.locator("[data-testid=ws-status]")).to_contain_text("已连接")
    assert page.errors == []


def test_without_the_demo_inbox_nothing_is_shown(plain_url: str, phone_page: Any) -> None:
    page = phone_page
    with page.expect_response(re.compile(r"/api/v1/notifications/sandbox/sms")) as answer:
        _send_code(page, plain_url, "13612340002")
    assert answer.value.json() == {"visible": False, "text": "", "sent_at": None}
    page.wait_for_timeout(500)
    expect(page.locator("[data-testid=sandbox-sms]")).to_have_count(0)
    assert "演示环境" not in page.content()
