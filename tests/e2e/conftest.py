"""A real daphne process on the test database, and Chromium driven by Playwright."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from tests.support.server import DaphneServer

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]


@pytest.fixture
def live_server_url(transactional_db: Any) -> Iterator[str]:
    """daphne serving the built frontends and the API on the test database."""
    for name, path in settings.FRONTEND_DIRS.items():
        assert (Path(path) / "index.html").exists(), f"frontend {name} is not built: run scripts/setup.sh"
    # The media node inside the web process, as in the demo (its RTMP/FLV ports on free ones).
    server = DaphneServer(MEDIA_EMBEDDED="1", MEDIA_RTMP_PORT="0", MEDIA_HTTP_PORT="0").start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", viewport={"width": 414, "height": 860})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.errors = errors
    try:
        yield pg
    finally:
        context.close()


@pytest.fixture(autouse=True)
def _orm_beside_playwright(monkeypatch: pytest.MonkeyPatch) -> None:
    # Playwright's sync API keeps an event loop running in this thread; the test's
    # own ORM calls are still plain synchronous calls, so Django's guard is lifted
    # for e2e tests only.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
