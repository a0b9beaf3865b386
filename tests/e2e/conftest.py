"""A real daphne process on the test database, and Chromium driven by Playwright.

Browser profiles: the patient H5 app is tested as a phone (390x844, touch), the
console on a desktop (``tests/e2e/helpers.py``). ``patient_page`` and
``console_page`` give one each; ``page`` is the patient phone unless the test
only ever opens the console. A context a test opens itself with a phone-sized
viewport gets the patient phone profile.

Screenshots as evidence: every page a test visits is saved (once it has
settled after each navigation, and again when the test ends) as
``artifacts/e2e-screenshots/<test>-<n>-<page>.png``; a re-run of a test replaces
its own files.
"""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from tests.e2e.helpers import BASE_CONTEXT, CONSOLE_DESKTOP, PATIENT_PHONE
from tests.support.server import ROOT, DaphneServer

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
SCREENSHOTS = ROOT / "artifacts" / "e2e-screenshots"
SETTLE_MS = 250  # after a navigation, before its screenshot (data loads, transitions end)
PHONE_WIDTH = 500  # a context asked for at most this wide is the patient phone


def _slug(url: str) -> str:
    """``http://host/h5/#/pages/video/room?room=1`` -> ``h5-pages-video-room``."""
    rest = re.sub(r"^[a-z]+://[^/]*", "", url)
    path, _, fragment = rest.partition("#")
    parts = [path.split("?")[0], fragment.split("?")[0]]
    slug = re.sub(r"[^A-Za-z0-9]+", "-", "-".join(parts)).strip("-")
    return slug[:60] or "blank"


class Screenshots:
    """Screenshots of every page of the running test, numbered in the order taken."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.test = ""
        self.count = 0
        self.pending = 0
        self.total = 0

    def start(self, test: str) -> None:
        self.test = re.sub(r"[^A-Za-z0-9_.-]+", "_", test).strip("_")
        self.count = self.pending = 0
        self.folder.mkdir(parents=True, exist_ok=True)
        for old in self.folder.glob(f"{self.test}-*.png"):
            old.unlink()

    def stop(self) -> None:
        self.test = ""

    def attach(self, page: Any) -> None:
        if getattr(page, "_screenshots", False):
            return
        page._screenshots = True
        page.on("framenavigated", lambda frame: self._navigated(page, frame))

    def _navigated(self, page: Any, frame: Any) -> None:
        # Runs in Playwright's event greenlet: waiting here does not hold up the test.
        if frame.parent_frame is not None or frame.url == "about:blank":
            return
        url = frame.url
        try:
            page.wait_for_timeout(SETTLE_MS)
        except Exception:
            return
        if not page.is_closed() and page.url == url:  # else the next navigation's shot shows it
            self.shoot(page)

    def shoot(self, page: Any, tag: str = "") -> None:
        test = self.test
        if not test or page.is_closed() or page.url == "about:blank":
            return
        slug = _slug(page.url)
        self.pending += 1
        partial = self.folder / f".{test}-{self.pending}.png"
        try:
            page.screenshot(path=str(partial), full_page=False, timeout=5000)
        except Exception:  # a crashed or closing page has nothing to show
            partial.unlink(missing_ok=True)
            return
        if test != self.test:  # the test ended meanwhile
            partial.unlink(missing_ok=True)
            return
        # Shots of several pages may be under way at once: numbered as they complete.
        self.count += 1
        self.total += 1
        partial.rename(self.folder / f"{test}-{self.count:02d}-{tag}{slug}.png")

    def end(self, context: Any) -> None:
        for page in context.pages:
            self.shoot(page, "end-")


_screenshots = Screenshots(SCREENSHOTS)


class _Context:
    """A browser context whose pages are screenshotted; shot once more before it closes."""

    def __init__(self, context: Any) -> None:
        self._context = context
        context.on("page", _screenshots.attach)

    def new_page(self) -> Any:
        page = self._context.new_page()
        _screenshots.attach(page)
        return page

    def close(self, **kwargs: Any) -> None:
        _screenshots.end(self._context)
        self._context.close(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


class _Browser:
    """Chromium with the apps' profiles applied to the contexts tests open."""

    def __init__(self, browser: Any) -> None:
        self._browser = browser

    def new_context(self, **options: Any) -> _Context:
        viewport = options.get("viewport") or {}
        if viewport.get("width", PHONE_WIDTH + 1) <= PHONE_WIDTH:
            options = {**options, **PATIENT_PHONE}
        return _Context(self._browser.new_context(**{**BASE_CONTEXT, **options}))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._browser, name)


@pytest.fixture(autouse=True)
def _screenshots_of_this_test(request: pytest.FixtureRequest) -> Iterator[None]:
    _screenshots.start(request.node.name)
    yield
    _screenshots.stop()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _screenshots.total:
        terminalreporter.write_line(f"e2e screenshots ({_screenshots.total} this run): {SCREENSHOTS}")


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
            yield _Browser(b)
        finally:
            for context in b.contexts:  # the ones a test left open
                _screenshots.end(context)
            b.close()


def _page(browser: Any, profile: dict[str, Any]) -> Iterator[Any]:
    context = browser.new_context(**profile)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.errors = errors
    try:
        yield pg
    finally:
        context.close()


@pytest.fixture
def patient_page(browser: Any) -> Iterator[Any]:
    """A page of the patient app's phone (390x844, touch); ``page.errors`` collects page errors."""
    yield from _page(browser, PATIENT_PHONE)


@pytest.fixture
def console_page(browser: Any) -> Iterator[Any]:
    """A page of the console's desktop (1440x900)."""
    yield from _page(browser, CONSOLE_DESKTOP)


def _only_opens_the_console(test: Any) -> bool:
    try:
        source = inspect.getsource(test)
    except (OSError, TypeError):
        return False
    console = "/console/" in source or "console_login(" in source
    patient = "/h5/" in source or "patient_login(" in source
    return console and not patient


@pytest.fixture
def page(request: pytest.FixtureRequest, browser: Any) -> Iterator[Any]:
    """The patient phone, or the console desktop for a test that opens only the console."""
    yield from _page(browser, CONSOLE_DESKTOP if _only_opens_the_console(request.function) else PATIENT_PHONE)


@pytest.fixture(autouse=True)
def _orm_beside_playwright(monkeypatch: pytest.MonkeyPatch) -> None:
    # Playwright's sync API keeps an event loop running in this thread; the test's
    # own ORM calls are still plain synchronous calls, so Django's guard is lifted
    # for e2e tests only.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
