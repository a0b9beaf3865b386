from __future__ import annotations

import datetime as dt

import pyotp
import pytest
from django.core.cache import cache
from django.utils import timezone

from apps.accounts.adapters import SandboxMiniProgram
from apps.accounts.models import AuthToken, SandboxOutbox, SmsCode, User
from apps.accounts.roles import Role
from apps.audit.models import AuditEvent
from hub import crypto
from tests.conftest import STRONG, Api, make_staff

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    cache.clear()


def login(api: Api, username: str, password: str, otp: str = "") -> tuple[int, dict]:
    r = api.post("/auth/staff/login", {"username": username, "password": password, "otp": otp})
    return r.status_code, r.json()


# --- password login, lockout, enumeration ------------------------------------


def test_it_logs_staff_in_and_returns_an_opaque_token_stored_hashed(api: Api, nurse) -> None:
    status, body = login(api, "nurse1", STRONG)
    assert status == 200, body
    assert body["user"]["role"] == "nurse" and body["user"]["role_label"] == "护士"
    raw = body["token"]
    assert not AuthToken.objects.filter(key_hash=raw).exists()
    assert AuthToken.objects.filter(key_hash=crypto.token_hash(raw), user=nurse.user).exists()
    me = Api(raw).get("/accounts/me")
    assert me.status_code == 200 and me.json()["username"] == "nurse1"
    assert AuditEvent.objects.filter(action="auth.login", actor_id=nurse.user.pk).exists()


def test_it_locks_after_five_failures_even_for_the_right_password(api: Api, nurse) -> None:
    for _ in range(4):
        assert login(api, "nurse1", "wrong-Pass-1")[1]["code"] == "auth.invalid_credentials"
    status, body = login(api, "nurse1", "wrong-Pass-1")
    assert status == 423 and body["code"] == "auth.locked"
    assert body["detail"]["retry_after_seconds"] > 0
    status, body = login(api, "nurse1", STRONG)
    assert status == 423 and body["code"] == "auth.locked"
    assert AuditEvent.objects.filter(action="auth.lockout", actor_id=nurse.user.pk).count() == 1
    # The lock is per username + IP: the same user from another address is not locked out.
    assert login(Api(ip="10.9.9.9"), "nurse1", STRONG)[0] == 200


def test_lock_expires_after_the_window(api: Api, nurse) -> None:
    from apps.accounts.models import LoginThrottle

    for _ in range(5):
        login(api, "nurse1", "wrong-Pass-1")
    LoginThrottle.objects.filter(username="nurse1").update(locked_until=timezone.now() - dt.timedelta(seconds=1))
    assert login(api, "nurse1", STRONG)[0] == 200


def test_unknown_and_known_users_answer_identically(api: Api, nurse) -> None:
    known = [login(api, "nurse1", "wrong-Pass-1") for _ in range(5)]
    unknown = [login(Api(), "ghost", "wrong-Pass-1") for _ in range(5)]
    assert known == unknown  # same statuses, codes, messages and lock detail
    assert known[-1][1]["code"] == "auth.locked"


def test_a_disabled_account_answers_like_a_wrong_password(api: Api, nurse) -> None:
    User.objects.filter(pk=nurse.user.pk).update(is_active=False)
    assert login(api, "nurse1", STRONG) == login(Api(), "ghost", STRONG)


def test_patients_cannot_use_the_staff_login(api: Api, patient) -> None:
    assert login(api, patient.user.username, "anything")[1]["code"] == "auth.invalid_credentials"


# --- TOTP ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "role,needs_totp",
    [
        (Role.DOCTOR, True),
        (Role.PHARMACIST, True),
        (Role.SYSADMIN, True),
        (Role.SECADMIN, True),
        (Role.AUDITOR, True),
        (Role.NURSE, False),
        (Role.THERAPIST, False),
        (Role.DIETITIAN, False),
        (Role.CS_AGENT, False),
    ],
)
def test_totp_is_required_for_the_listed_roles(api: Api, role: str, needs_totp: bool) -> None:
    persona = make_staff(role, f"u_{role}")
    status, body = login(api, f"u_{role}", STRONG)
    if not needs_totp:
        assert status == 200
        return
    assert status == 401 and body["code"] == "auth.otp_required"
    assert not AuthToken.objects.filter(user=persona.user).exists()
    status, body = login(api, f"u_{role}", STRONG, "000000" if persona.totp() != "000000" else "111111")
    assert body["code"] == "auth.otp_invalid"
    status, body = login(api, f"u_{role}", STRONG, persona.totp())
    assert status == 200, body


def test_a_totp_code_is_accepted_once(api: Api, doctor) -> None:
    code = doctor.totp()
    assert login(api, "doc", STRONG, code)[0] == 200
    status, body = login(api, "doc", STRONG, code)
    assert status == 401 and body["code"] == "auth.otp_invalid"


def test_wrong_totp_codes_count_towards_the_lockout(api: Api, doctor) -> None:
    bad = "123456" if doctor.totp() != "123456" else "654321"
    for _ in range(4):
        login(api, "doc", STRONG, bad)
    assert login(api, "doc", STRONG, bad)[1]["code"] == "auth.locked"
    assert login(api, "doc", STRONG, doctor.totp())[1]["code"] == "auth.locked"


# --- passwords ---------------------------------------------------------------------


def test_an_expired_password_must_be_changed_before_login(api: Api, nurse) -> None:
    User.objects.filter(pk=nurse.user.pk).update(password_changed_at=timezone.now() - dt.timedelta(days=91))
    status, body = login(api, "nurse1", STRONG)
    assert status == 403 and body["code"] == "auth.password_expired"
    assert not AuthToken.objects.filter(user=nurse.user, kind="session").exists()
    change = body["detail"]["change_token"]
    weak = api.post("/auth/password/change", {"change_token": change, "old_password": STRONG, "new_password": "abc"})
    assert weak.status_code == 422 and weak.json()["code"] == "auth.password_weak"
    reasons = weak.json()["detail"]["reasons"]
    assert "密码至少8位" in reasons
    same = api.post("/auth/password/change", {"change_token": change, "old_password": STRONG, "new_password": STRONG})
    assert same.status_code == 422
    ok = api.post(
        "/auth/password/change", {"change_token": change, "old_password": STRONG, "new_password": "New-Ward-8!"}
    )
    assert ok.status_code == 204
    assert login(api, "nurse1", "New-Ward-8!")[0] == 200


@pytest.mark.parametrize(
    "password,reason",
    [
        ("Ab1!", "密码至少8位"),
        ("abcdefgh1", "密码须包含大写字母、小写字母、数字、符号中的至少三类"),
        ("Password1", "密码过于常见"),
        ("Nurse1-abcD", "密码不能包含用户名"),
        ("X-13912345678", "密码不能包含手机号"),
    ],
)
def test_password_policy(password: str, reason: str, nurse) -> None:
    from apps.accounts.passwords import password_problems

    nurse.user.set_phone("13912345678")
    assert reason in password_problems(password, user=nurse.user)


def test_the_last_five_passwords_cannot_be_reused(nurse) -> None:
    from apps.accounts import services
    from apps.accounts.passwords import password_problems

    current = STRONG
    for n in range(5):
        new = f"Rotate-{n}-Pass!"
        services.password_change(user=User.objects.get(pk=nurse.user.pk), old_password=current, new_password=new)
        current = new
    user = User.objects.get(pk=nurse.user.pk)
    assert any("最近5次" in p for p in password_problems("Rotate-1-Pass!", user=user))
    assert password_problems("Rotate-9-Pass!", user=user) == []


# --- tokens ------------------------------------------------------------------------


def test_logout_revokes_the_token(nurse) -> None:
    client = nurse.api()
    assert client.get("/accounts/me").status_code == 200
    assert client.post("/auth/logout").status_code == 204
    r = client.get("/accounts/me")
    assert r.status_code == 401 and r.json()["code"] == "auth.unauthenticated"


def test_staff_tokens_expire_when_idle(nurse) -> None:
    client = nurse.api()
    AuthToken.objects.filter(user=nurse.user).update(last_seen_at=timezone.now() - dt.timedelta(minutes=31))
    assert client.get("/accounts/me").status_code == 401
    assert AuthToken.objects.get(user=nurse.user).revoked_at is not None


def test_tokens_past_their_absolute_lifetime_fail(nurse) -> None:
    client = nurse.api()
    AuthToken.objects.filter(user=nurse.user).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert client.get("/accounts/me").status_code == 401


def test_password_change_ends_every_other_session(nurse) -> None:
    first, second = nurse.api(), nurse.api()
    assert (
        first.post("/auth/password/change", {"old_password": STRONG, "new_password": "Another-Pass-9"}).status_code
        == 204
    )
    # The session the change was made in stays (more in test_sessions.py).
    assert first.get("/accounts/me").status_code == 200
    assert second.get("/accounts/me").status_code == 401


def test_garbage_tokens_are_refused(api: Api) -> None:
    for token in ["x", "a" * 500, "Bearer"]:
        r = Api(token).get("/accounts/me")
        assert r.status_code == 401 and r.json()["code"] == "auth.unauthenticated"


# --- SMS OTP -----------------------------------------------------------------------


PHONE = "13712345678"


def last_sms_code(phone: str = PHONE) -> str:
    body = SandboxOutbox.objects.filter(recipient_hash=crypto.lookup_hash(phone, context="phone")).latest("id").body
    return body.split("验证码为")[1][:6]


# The SMS leaves through the outbox after commit: a real transaction.
@pytest.mark.django_db(transaction=True)
def test_sms_login_creates_a_patient_and_the_code_is_six_digits(api: Api) -> None:
    r = api.post("/auth/sms/send", {"phone": PHONE})
    assert r.status_code == 200 and r.json() == {"cooldown_seconds": 60, "expires_in": 300}
    code = last_sms_code()
    assert len(code) == 6 and code.isdigit()
    r = api.post("/auth/sms/login", {"phone": PHONE, "code": code})
    assert r.status_code == 200, r.json()
    assert r.json()["user"]["role"] == "patient"
    assert r.json()["user"]["phone_masked"] == "137****5678"
    # A code is single-use.
    again = api.post("/auth/sms/login", {"phone": PHONE, "code": code})
    assert again.status_code == 401


# The SMS leaves through the outbox after commit: a real transaction.
@pytest.mark.django_db(transaction=True)
def test_sms_code_expires_after_five_minutes(api: Api) -> None:
    api.post("/auth/sms/send", {"phone": PHONE})
    code = last_sms_code()
    row = SmsCode.objects.get()
    assert (row.expires_at - row.created_at) == dt.timedelta(minutes=5)
    SmsCode.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    r = api.post("/auth/sms/login", {"phone": PHONE, "code": code})
    assert r.status_code == 401 and r.json()["code"] == "auth.otp_expired"
    assert not User.objects.filter(role="patient").exists()


# The SMS leaves through the outbox after commit: a real transaction.
@pytest.mark.django_db(transaction=True)
def test_sms_code_allows_five_tries(api: Api) -> None:
    api.post("/auth/sms/send", {"phone": PHONE})
    code = last_sms_code()
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    remaining = []
    for _ in range(4):
        r = api.post("/auth/sms/login", {"phone": PHONE, "code": wrong})
        assert r.json()["code"] == "auth.otp_invalid"
        remaining.append(r.json()["detail"]["remaining_attempts"])
    assert remaining == [4, 3, 2, 1]
    assert api.post("/auth/sms/login", {"phone": PHONE, "code": wrong}).json()["code"] == "auth.otp_exhausted"
    # After five failures even the right code is refused.
    r = api.post("/auth/sms/login", {"phone": PHONE, "code": code})
    assert r.json()["code"] == "auth.otp_exhausted"
    assert not User.objects.filter(role="patient").exists()


# The SMS leaves through the outbox after commit: a real transaction.
@pytest.mark.django_db(transaction=True)
def test_sms_send_is_limited_to_one_per_minute_and_ten_per_day(api: Api) -> None:
    assert api.post("/auth/sms/send", {"phone": PHONE}).status_code == 200
    r = api.post("/auth/sms/send", {"phone": PHONE})
    assert r.status_code == 429 and r.json()["code"] == "auth.otp_cooldown"
    assert SandboxOutbox.objects.count() == 1
    # Nine more earlier today (backdated past the cooldown) reach the daily cap.
    now = timezone.now()
    SmsCode.objects.update(created_at=now - dt.timedelta(minutes=2))
    for n in range(9):
        SmsCode.objects.create(
            phone_hash=crypto.lookup_hash(PHONE, context="phone"),
            code_hash="x",
            created_at=max(now - dt.timedelta(minutes=3 + n), timezone.localtime(now).replace(hour=0, minute=0)),
            expires_at=now,
        )
    cache.clear()
    r = api.post("/auth/sms/send", {"phone": PHONE})
    assert r.status_code == 429 and r.json()["code"] == "auth.otp_daily_limit"
    assert SandboxOutbox.objects.count() == 1


def test_sms_send_validates_the_phone(api: Api) -> None:
    for phone in ["12345", "23800138000", "1380013800a"]:
        r = api.post("/auth/sms/send", {"phone": phone})
        assert r.status_code == 422 and r.json()["code"] == "validation_error"
    assert SandboxOutbox.objects.count() == 0


# --- mini-program login --------------------------------------------------------------


def test_miniprogram_code_exchange_is_single_use_and_signed(api: Api) -> None:
    code = SandboxMiniProgram.issue_code(platform="weixin", openid="o_abc")
    r = api.post("/auth/miniprogram/login", {"platform": "weixin", "code": code})
    assert r.status_code == 200 and r.json()["user"]["role"] == "patient"
    user_id = r.json()["user"]["id"]
    assert api.post("/auth/miniprogram/login", {"platform": "weixin", "code": code}).status_code == 401
    # Same openid, new code: the same account.
    code2 = SandboxMiniProgram.issue_code(platform="weixin", openid="o_abc")
    assert api.post("/auth/miniprogram/login", {"platform": "weixin", "code": code2}).json()["user"]["id"] == user_id
    forged = code2[:-4] + "0000"
    r = api.post("/auth/miniprogram/login", {"platform": "weixin", "code": forged})
    assert r.status_code == 401 and r.json()["code"] == "auth.miniprogram_code_invalid"
    stale = SandboxMiniProgram.issue_code(platform="alipay", openid="o_x", now=timezone.now().timestamp() - 301)
    assert api.post("/auth/miniprogram/login", {"platform": "alipay", "code": stale}).status_code == 401
    # A weixin code is no alipay code.
    cross = SandboxMiniProgram.issue_code(platform="weixin", openid="o_y")
    assert api.post("/auth/miniprogram/login", {"platform": "alipay", "code": cross}).status_code == 401


def test_totp_secret_is_encrypted_at_rest(doctor) -> None:
    raw = User.objects.filter(pk=doctor.user.pk).values_list("totp_secret_enc", flat=True).get()
    assert doctor.totp_secret not in raw
    assert pyotp.TOTP(User.objects.get(pk=doctor.user.pk).totp_secret).now() == doctor.totp()
