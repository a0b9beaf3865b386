"""Ending sessions (issue 11 findings 11 and 13): log out everywhere, an
administrator's forced sign-out, a password change ends every other session, and
wrong old passwords on a password change are throttled like sign-in."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from apps.accounts.models import AuthToken, User
from apps.audit.models import AuditEvent
from tests.conftest import STRONG, Api, make_staff

pytestmark = pytest.mark.django_db

NEW = "Another-Pass-9"


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    cache.clear()


def live_sessions(user: User) -> int:
    return AuthToken.objects.filter(user=user, revoked_at__isnull=True).count()


# --- log out everywhere ----------------------------------------------------------


def test_logout_revokes_only_the_current_token(nurse) -> None:
    first, second = nurse.api(), nurse.api()
    assert first.post("/auth/logout").status_code == 204
    assert first.get("/accounts/me").status_code == 401
    assert second.get("/accounts/me").status_code == 200


def test_logout_all_ends_every_session_of_the_user_and_is_audited(nurse, doctor) -> None:
    first, second, third = nurse.api(), nurse.api(), nurse.api()
    other = doctor.api()
    r = first.post("/auth/logout/all")
    assert r.status_code == 200 and r.json() == {"revoked": 3}
    for client in (first, second, third):
        assert client.get("/accounts/me").status_code == 401
    assert other.get("/accounts/me").status_code == 200
    event = AuditEvent.objects.get(action="auth.logout_all")
    assert event.actor_id == nurse.user.pk and event.detail == {"count": 3}


def test_logout_all_works_for_patients(patient) -> None:
    phone, browser = patient.api(), patient.api()
    assert phone.post("/auth/logout/all").status_code == 200
    assert browser.get("/accounts/me").status_code == 401


def test_logout_all_needs_a_session(api: Api) -> None:
    r = api.post("/auth/logout/all")
    assert r.status_code == 401 and r.json()["code"] == "auth.unauthenticated"


# --- an administrator's forced sign-out ------------------------------------------------


@pytest.mark.parametrize("admin", ["secadmin", "sysadmin"])
def test_an_admin_signs_a_staff_member_out_everywhere(request: pytest.FixtureRequest, admin: str, nurse) -> None:
    actor = request.getfixturevalue(admin)
    sessions = [nurse.api(), nurse.api()]
    console = actor.api()
    r = console.post(f"/admin/users/{nurse.user.pk}/sessions/revoke")
    assert r.status_code == 200 and r.json() == {"revoked": 2}
    assert all(s.get("/accounts/me").status_code == 401 for s in sessions)
    assert console.get("/accounts/me").status_code == 200
    event = AuditEvent.objects.get(action="admin.sessions_revoke")
    assert event.actor_id == actor.user.pk and event.object_id == str(nurse.user.pk)
    assert event.detail == {"count": 2}


def test_forced_sign_out_is_not_for_oneself_nor_for_other_roles(secadmin, nurse, doctor, patient) -> None:
    console = secadmin.api()
    r = console.post(f"/admin/users/{secadmin.user.pk}/sessions/revoke")
    assert r.status_code == 409 and r.json()["code"] == "admin.self_action"
    assert console.get("/accounts/me").status_code == 200
    # Patients are not administered here.
    assert console.post(f"/admin/users/{patient.user.pk}/sessions/revoke").status_code == 404
    assert console.post("/admin/users/999999/sessions/revoke").status_code == 404
    # A doctor (or any non-admin) cannot sign others out.
    kept = nurse.api()
    r = doctor.api().post(f"/admin/users/{nurse.user.pk}/sessions/revoke")
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    assert kept.get("/accounts/me").status_code == 200


# --- a password change ends every other session ------------------------------------


def test_a_password_change_while_signed_in_keeps_this_session_and_ends_the_others(nurse) -> None:
    current, other, another = nurse.api(), nurse.api(), nurse.api()
    r = current.post("/auth/password/change", {"old_password": STRONG, "new_password": NEW})
    assert r.status_code == 204
    assert current.get("/accounts/me").status_code == 200
    assert other.get("/accounts/me").status_code == 401
    assert another.get("/accounts/me").status_code == 401
    assert live_sessions(nurse.user) == 1


def test_a_password_change_through_the_change_token_ends_every_session(api: Api, nurse) -> None:
    older = nurse.api()
    User.objects.filter(pk=nurse.user.pk).update(password_changed_at=timezone.now() - dt.timedelta(days=91))
    r = api.post("/auth/staff/login", {"username": "nurse1", "password": STRONG})
    change = r.json()["detail"]["change_token"]
    r = api.post("/auth/password/change", {"change_token": change, "old_password": STRONG, "new_password": NEW})
    assert r.status_code == 204
    assert older.get("/accounts/me").status_code == 401
    assert live_sessions(nurse.user) == 0  # the change token is spent too
    again = api.post("/auth/password/change", {"change_token": change, "old_password": NEW, "new_password": STRONG})
    assert again.status_code == 401


# --- wrong old passwords are throttled ------------------------------------------------


def test_wrong_old_passwords_lock_the_change_even_for_the_right_one(nurse) -> None:
    client = nurse.api()
    remaining = []
    for _ in range(settings.LOGIN_MAX_FAILURES - 1):
        r = client.post("/auth/password/change", {"old_password": "wrong-Pass-1", "new_password": NEW})
        assert r.status_code == 401 and r.json()["code"] == "auth.invalid_credentials"
        remaining.append(r.json()["detail"]["remaining_attempts"])
        assert r.json()["detail"]["lock_minutes"] == settings.LOGIN_LOCK_MINUTES
    assert remaining == [4, 3, 2, 1]
    r = client.post("/auth/password/change", {"old_password": "wrong-Pass-1", "new_password": NEW})
    assert r.status_code == 423 and r.json()["code"] == "auth.locked"
    # Locked: the right old password is refused, the password stays.
    r = client.post("/auth/password/change", {"old_password": STRONG, "new_password": NEW})
    assert r.status_code == 423 and r.json()["code"] == "auth.locked"
    nurse.user.refresh_from_db()
    assert nurse.user.check_password(STRONG)
    assert AuditEvent.objects.filter(action="auth.password_change", result="failed").count() == 5
    assert AuditEvent.objects.filter(action="auth.lockout", actor_id=nurse.user.pk).count() == 1
    # The same counter as sign-in (per username and IP): guessing here locks there.
    r = Api().post("/auth/staff/login", {"username": "nurse1", "password": STRONG})
    assert r.status_code == 423
    # The session itself is not ended by the lock.
    assert client.get("/accounts/me").status_code == 200


def test_a_right_old_password_clears_the_count(nurse) -> None:
    client = nurse.api()
    for _ in range(settings.LOGIN_MAX_FAILURES - 1):
        client.post("/auth/password/change", {"old_password": "wrong-Pass-1", "new_password": NEW})
    assert client.post("/auth/password/change", {"old_password": STRONG, "new_password": NEW}).status_code == 204
    r = client.post("/auth/password/change", {"old_password": "wrong-Pass-1", "new_password": STRONG})
    assert r.json()["detail"]["remaining_attempts"] == settings.LOGIN_MAX_FAILURES - 1


def test_wrong_old_passwords_through_the_change_token_are_throttled(api: Api) -> None:
    make_staff("nurse", "nurse2")
    User.objects.filter(username="nurse2").update(password_changed_at=timezone.now() - dt.timedelta(days=91))
    change = api.post("/auth/staff/login", {"username": "nurse2", "password": STRONG}).json()["detail"]["change_token"]
    for _ in range(settings.LOGIN_MAX_FAILURES):
        api.post("/auth/password/change", {"change_token": change, "old_password": "wrong-Pass-1", "new_password": NEW})
    r = api.post("/auth/password/change", {"change_token": change, "old_password": STRONG, "new_password": NEW})
    assert r.status_code == 423 and r.json()["code"] == "auth.locked"
