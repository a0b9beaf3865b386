"""Try limits hold under concurrency (issue 11 finding 4): the attempt is counted
atomically before the password or code is evaluated, so concurrent guesses
cannot all be checked against one stale count.

Real concurrent requests against PostgreSQL: threads with their own database
connections through the whole HTTP stack, in a real transaction
(``transactional_db``). The password check and the code comparison are slowed
a little so that every request is in flight at once."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.utils import timezone

from apps.accounts import services
from apps.accounts.models import AuthToken, LoginThrottle, SmsCode, User
from apps.audit.models import AuditEvent
from hub import crypto
from tests.conftest import STRONG, Api, make_staff

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 20
SMS_THREADS = 29
PHONE = "13712345678"
WRONG = "wrong-Pass-1"


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    cache.clear()


def _concurrently(n: int, fn: Callable[[], Any]) -> list[Any]:
    """Run ``fn`` in ``n`` threads released together; each thread closes its connection."""
    barrier = threading.Barrier(n)

    def run() -> Any:
        try:
            barrier.wait(timeout=30)
            return fn()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(n) as pool:
        return [f.result() for f in [pool.submit(run) for _ in range(n)]]


class _Counting:
    """Wraps a function: counts its calls and holds each for a moment."""

    def __init__(self, fn: Callable[..., Any], delay: float = 0.15) -> None:
        self.fn, self.delay, self.calls, self.lock = fn, delay, 0, threading.Lock()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            self.calls += 1
        time.sleep(self.delay)
        return self.fn(*args, **kwargs)


def _login(username: str, password: str) -> tuple[int, dict[str, Any]]:
    r = Api(ip="10.0.0.7").post("/auth/staff/login", {"username": username, "password": password})
    return r.status_code, r.json()


@pytest.mark.parametrize("known", [True, False], ids=["known_user", "unknown_user"])
def test_concurrent_wrong_passwords_evaluate_at_most_the_limit(monkeypatch: pytest.MonkeyPatch, known: bool) -> None:
    make_staff("nurse", "nurse1")
    username = "nurse1" if known else "ghost"
    checked = _Counting(User.check_password)
    dummy = _Counting(services._check_dummy)
    monkeypatch.setattr(User, "check_password", lambda self, raw: checked(self, raw))
    monkeypatch.setattr(services, "_check_dummy", dummy)

    answers = _concurrently(THREADS, lambda: _login(username, WRONG))

    evaluated = checked.calls + dummy.calls
    assert evaluated <= settings.LOGIN_MAX_FAILURES, f"{evaluated} wrong passwords evaluated"
    codes = [body["code"] for _, body in answers]
    assert set(codes) <= {"auth.invalid_credentials", "auth.locked"}
    assert codes.count("auth.invalid_credentials") <= settings.LOGIN_MAX_FAILURES - 1
    assert AuditEvent.objects.filter(action="auth.login_failed").count() == evaluated
    assert AuditEvent.objects.filter(action="auth.lockout").count() == 1
    # Hints never promise more tries than are left.
    hints = [body["detail"].get("remaining_attempts", 0) for _, body in answers]
    assert all(h < settings.LOGIN_MAX_FAILURES for h in hints)

    # Locked: the right password is refused now, and not evaluated either.
    before = checked.calls
    status, body = _login(username, STRONG)
    assert status == 423 and body["code"] == "auth.locked"
    assert checked.calls == before
    assert not AuthToken.objects.filter(kind="session").exists()


def test_wrong_then_right_in_every_thread_never_exceeds_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each thread guesses wrong, then sends the right password: at most the limit
    of wrong passwords is evaluated before the lock, and once five wrong ones have
    been counted no right one gets through."""
    make_staff("nurse", "nurse1")
    seen: list[str] = []
    lock = threading.Lock()
    original = User.check_password

    def check(self: User, raw: str) -> bool:
        with lock:
            seen.append("wrong" if raw == WRONG else "right")
        time.sleep(0.1)
        return original(self, raw)

    monkeypatch.setattr(User, "check_password", check)

    def wrong_then_right() -> tuple[int, int]:
        return _login("nurse1", WRONG)[0], _login("nurse1", STRONG)[0]

    _concurrently(THREADS, wrong_then_right)

    # A right password resets the count, so count wrong ones between successes.
    wrong_run, longest = 0, 0
    for what in seen:
        wrong_run = wrong_run + 1 if what == "wrong" else 0
        longest = max(longest, wrong_run)
    assert longest <= settings.LOGIN_MAX_FAILURES
    assert len(seen) <= 2 * THREADS


def test_the_right_password_after_five_failures_is_refused_while_locked(api: Api) -> None:
    make_staff("nurse", "nurse1")
    remaining = []
    for _ in range(settings.LOGIN_MAX_FAILURES - 1):
        status, body = _login("nurse1", WRONG)
        assert status == 401
        remaining.append(body["detail"]["remaining_attempts"])
    assert remaining == [4, 3, 2, 1]
    assert _login("nurse1", WRONG)[1]["code"] == "auth.locked"
    assert _login("nurse1", STRONG)[1]["code"] == "auth.locked"
    # After the window the right password works and clears the count.
    LoginThrottle.objects.update(locked_until=timezone.now() - dt.timedelta(seconds=1))
    assert _login("nurse1", STRONG)[0] == 200
    assert not LoginThrottle.objects.exists()


def _sms_code() -> tuple[SmsCode, str]:
    phone_hash = crypto.lookup_hash(PHONE, context="phone")
    code = "123456"
    now = timezone.now()
    row = SmsCode.objects.create(
        phone_hash=phone_hash,
        code_hash=services._code_hash(phone_hash, code),
        created_at=now,
        expires_at=now + dt.timedelta(minutes=5),
    )
    return row, code


def test_concurrent_sms_guesses_stay_within_five_tries(monkeypatch: pytest.MonkeyPatch) -> None:
    row, code = _sms_code()
    compared = _Counting(services._code_hash, delay=0.1)
    monkeypatch.setattr(services, "_code_hash", compared)

    def guess(n: int) -> tuple[int, str]:
        r = Api(ip=f"10.1.0.{n}").post("/auth/sms/login", {"phone": PHONE, "code": f"{n:06d}"})
        return r.status_code, r.json()["code"]

    counter = iter(range(1, SMS_THREADS + 1))
    counter_lock = threading.Lock()

    def next_guess() -> tuple[int, str]:
        with counter_lock:
            n = next(counter)
        return guess(n)

    answers = _concurrently(SMS_THREADS, next_guess)

    row.refresh_from_db()
    assert row.attempts <= settings.OTP_MAX_ATTEMPTS, f"attempts pushed to {row.attempts}"
    assert compared.calls <= settings.OTP_MAX_ATTEMPTS
    assert all(status == 401 for status, _ in answers), answers
    assert {c for _, c in answers} <= {"auth.otp_invalid", "auth.otp_exhausted"}
    assert AuditEvent.objects.filter(action="auth.otp_failed").count() == compared.calls
    assert not User.objects.filter(role="patient").exists()
    # The tries are used up: the right code is refused too.
    r = Api().post("/auth/sms/login", {"phone": PHONE, "code": code})
    assert r.status_code == 401 and r.json()["code"] == "auth.otp_exhausted"
    assert not User.objects.filter(role="patient").exists()


def test_the_totp_step_does_not_use_up_a_try() -> None:
    """The console sends the password first and the code after 401 auth.otp_required:
    that step is counted up front like any try, then given back."""
    doctor = make_staff("doctor", "doc")
    for _ in range(settings.LOGIN_MAX_FAILURES - 1):
        assert _login("doc", WRONG)[1]["code"] == "auth.invalid_credentials"
    for _ in range(3):
        assert _login("doc", STRONG)[1]["code"] == "auth.otp_required"
    assert LoginThrottle.objects.get(username="doc").failures == settings.LOGIN_MAX_FAILURES - 1
    r = Api(ip="10.0.0.7").post("/auth/staff/login", {"username": "doc", "password": STRONG, "otp": doctor.totp()})
    assert r.status_code == 200, r.json()
    assert not LoginThrottle.objects.exists()
