"""First sign-in of a TOTP role enrols its authenticator (issue 10, defect 1);
an administrator can reset it (audited); the wrong-password answer says how many
attempts remain (defect 10)."""

from __future__ import annotations

import time

import pyotp
import pytest
from django.core.cache import cache

from apps.accounts.models import AuthToken, User
from apps.accounts.roles import Role
from apps.audit.models import AuditEvent
from tests.conftest import STRONG, Api, make_staff

pytestmark = pytest.mark.django_db
NEW_PASSWORD = "Clinic-9-Dawn!"


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    cache.clear()


def _login(username: str, password: str, otp: str = "") -> tuple[int, dict]:
    r = Api().post("/auth/staff/login", {"username": username, "password": password, "otp": otp})
    return r.status_code, r.json()


def _new_doctor(sysadmin) -> tuple[User, str]:
    r = sysadmin.api().post(
        "/admin/users",
        {
            "username": "firstdoc",
            "display_name": "初诊医生",
            "role": "doctor",
            "department": "心内科",
            "title": "主治医师",
        },
    )
    assert r.status_code == 201, r.json()
    body = r.json()
    assert (body["user"]["department"], body["user"]["title"]) == ("心内科", "主治医师")
    assert (body["user"]["totp_state"], body["user"]["totp_state_label"]) == ("pending", "待首次登录绑定")
    return User.objects.get(username="firstdoc"), body["initial_password"]


def test_first_sign_in_enrols_then_changes_the_password_then_signs_in(sysadmin) -> None:
    user, initial = _new_doctor(sysadmin)
    # The password alone leads to enrolment (a code typed in before enrolling changes nothing).
    for otp in ("", "123456"):
        status, body = _login("firstdoc", initial, otp)
        assert (status, body["code"]) == (403, "auth.totp_enrolment_required"), body
        assert "身份验证器" in body["message"]
    enrol = body["detail"]["enrol_token"]
    assert not AuthToken.objects.filter(user=user, kind=AuthToken.Kind.SESSION).exists()
    # The enrolment token is no session.
    assert Api(enrol).get("/accounts/me").status_code == 401

    r = Api().post("/auth/totp/enrolment", {"enrol_token": enrol})
    assert r.status_code == 200, r.json()
    e = r.json()
    assert e["qr_svg"].startswith("data:image/svg+xml") and e["account"] == "firstdoc"
    assert e["otpauth_uri"].startswith("otpauth://totp/") and f"secret={e['secret']}" in e["otpauth_uri"]
    totp = pyotp.TOTP(e["secret"])

    # A wrong code confirms nothing and says how many tries remain.
    wrong = f"{(int(totp.now()) + 1) % 1_000_000:06d}"
    r = Api().post("/auth/totp/confirm", {"enrol_token": enrol, "code": wrong})
    assert (r.status_code, r.json()["code"]) == (401, "auth.otp_invalid")
    assert r.json()["detail"]["remaining_attempts"] == 4
    user.refresh_from_db()
    assert user.totp_confirmed_at is None

    # The right code enrols; the initial password must then be changed.
    r = Api().post("/auth/totp/confirm", {"enrol_token": enrol, "code": totp.now()})
    assert (r.status_code, r.json()["code"]) == (403, "auth.password_expired"), r.json()
    change = r.json()["detail"]["change_token"]
    user.refresh_from_db()
    assert user.totp_confirmed_at is not None
    assert AuditEvent.objects.filter(action="auth.totp_enrolled", actor_id=user.pk).count() == 1
    # The enrolment token is spent.
    again = Api().post("/auth/totp/confirm", {"enrol_token": enrol, "code": totp.now()})
    assert (again.status_code, again.json()["code"]) == (401, "auth.totp_enrol_expired")
    assert Api().post("/auth/totp/enrolment", {"enrol_token": enrol}).json()["code"] == "auth.totp_enrol_expired"

    r = Api().post(
        "/auth/password/change", {"change_token": change, "old_password": initial, "new_password": NEW_PASSWORD}
    )
    assert r.status_code == 204, r.json()
    # The code used to enrol cannot sign in again (one use per time step) ...
    status, body = _login("firstdoc", NEW_PASSWORD, totp.now())
    assert (status, body["code"]) == (401, "auth.otp_invalid")
    # ... the next step's code (accepted within one step of drift) does.
    status, body = _login("firstdoc", NEW_PASSWORD, totp.at(time.time() + totp.interval))
    assert status == 200, body
    assert body["user"]["role"] == "doctor"


def test_an_admin_resets_a_lost_authenticator(secadmin, sysadmin) -> None:
    doctor = make_staff(Role.DOCTOR, "lostphone")
    session = doctor.api()
    assert session.get("/accounts/me").status_code == 200
    # Only the security administrator, never on their own account, only for TOTP roles.
    assert sysadmin.api().post(f"/admin/users/{doctor.user.pk}/totp/reset").status_code == 403
    agent = make_staff(Role.CS_AGENT, "agent1")
    r = secadmin.api().post(f"/admin/users/{agent.user.pk}/totp/reset")
    assert (r.status_code, r.json()["code"]) == (409, "admin.totp_not_used")
    assert not AuditEvent.objects.filter(action="admin.totp_reset").exists()

    r = secadmin.api().post(f"/admin/users/{doctor.user.pk}/totp/reset")
    assert r.status_code == 200, r.json()
    assert r.json()["totp_state"] == "pending"
    doctor.user.refresh_from_db()
    assert (doctor.user.totp_secret_enc, doctor.user.totp_confirmed_at) == ("", None)
    assert session.get("/accounts/me").status_code == 401  # sessions ended
    audit = AuditEvent.objects.get(action="admin.totp_reset")
    assert (audit.actor_id, audit.object_id) == (secadmin.user.pk, str(doctor.user.pk))
    # The old secret no longer signs in: the next sign-in enrols again.
    status, body = _login("lostphone", STRONG, pyotp.TOTP(doctor.totp_secret).now())
    assert (status, body["code"]) == (403, "auth.totp_enrolment_required")


def test_wrong_password_says_how_many_attempts_remain_for_known_and_unknown_users(nurse) -> None:
    for username in (nurse.user.username, "nobody"):
        remaining = []
        for _ in range(3):
            status, body = _login(username, "wrong-Password-1")
            assert (status, body["code"]) == (401, "auth.invalid_credentials")
            remaining.append(body["detail"]["remaining_attempts"])
        assert remaining == [4, 3, 2] and body["detail"]["lock_minutes"] == 15
