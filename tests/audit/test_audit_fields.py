"""What the level-3 checklist asks of every audit record (docs/security.md 2.7, 3.1, 3.2,
3.9, 3.15): sign-in, sign-out and second-factor outcomes are recorded with the caller's
IP and the request id the response carried; no superuser exists; and an audit record
that cannot be written takes the action down with it (nothing half-done)."""

from __future__ import annotations

import threading

import psycopg2
import pytest
from django.apps import apps as django_apps
from django.conf import settings
from django.db import connection

from apps.accounts.models import AuthToken, User
from apps.accounts.roles import Role
from apps.audit.models import AuditEvent
from apps.audit.services import audit_record
from hub.crypto import token_hash
from tests.conftest import Api, make_staff

IP = "10.0.0.7"


def _events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


@pytest.mark.django_db
def test_sign_in_second_factor_and_sign_out_are_recorded_with_ip_and_request_id() -> None:
    doctor = make_staff(Role.DOCTOR, "auditfields")
    api = Api(ip=IP)
    wrong = api.client.post(
        "/api/v1/auth/staff/login",
        {"username": "auditfields", "password": doctor.password, "otp": "000000"},
        content_type="application/json",
        HTTP_X_REQUEST_ID="probe-mfa-wrong-0001",
    )
    assert wrong.status_code == 401
    (failed,) = _events("auth.mfa_failed")
    assert (failed.actor_id, failed.result, failed.ip, failed.request_id) == (
        doctor.user.pk,
        AuditEvent.Result.FAILED,
        IP,
        "probe-mfa-wrong-0001",
    )

    ok = api.client.post(
        "/api/v1/auth/staff/login",
        {"username": "auditfields", "password": doctor.password, "otp": doctor.totp()},
        content_type="application/json",
    )
    assert ok.status_code == 200, ok.json()
    request_id = ok["X-Request-ID"]
    (mfa_ok,) = _events("auth.mfa_ok")
    (login,) = _events("auth.login")
    for row in (mfa_ok, login):
        assert (row.actor_id, row.ip, row.request_id) == (doctor.user.pk, IP, request_id)
        assert row.actor_role == Role.DOCTOR and row.result == AuditEvent.Result.OK
        assert row.at.tzinfo is not None and row.at.utcoffset().total_seconds() == 0

    token = ok.json()["token"]
    out = Api(token, ip=IP).post("/auth/logout")
    assert out.status_code in (200, 204), out.content
    (logout,) = _events("auth.logout")
    assert (logout.actor_id, logout.ip, logout.object_type) == (doctor.user.pk, IP, "token")
    assert logout.request_id == out["X-Request-ID"]


def test_there_is_no_superuser_and_no_admin_site() -> None:
    fields = {f.name for f in User._meta.get_fields()}
    assert not {"is_superuser", "is_staff", "user_permissions", "groups"} & fields
    assert not hasattr(User.objects, "create_superuser")
    assert not django_apps.is_installed("django.contrib.admin")


@pytest.mark.django_db(transaction=True)
def test_an_audit_record_that_cannot_be_written_rolls_the_action_back() -> None:
    """Another connection holds the chain's head (as a stuck writer would) and this
    connection gives up waiting: the logout fails as a whole, the token stays live, no
    audit row, and the client gets the 503 it can retry."""
    nurse = make_staff(Role.NURSE, "auditrollback")
    audit_record(action="auth.login", actor=nurse.user)  # the chain has a head to hold
    api = nurse.api()
    key_hash = token_hash(api.token)
    before = AuditEvent.objects.count()
    db = settings.DATABASES["default"]
    holder = psycopg2.connect(
        dbname=connection.settings_dict["NAME"], user=db["USER"], host=db["HOST"], port=db["PORT"] or 5432
    )
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        with holder.cursor() as cursor:
            cursor.execute("SELECT id FROM audit_audithead FOR UPDATE")
            locked.set()
            release.wait(30)
        holder.rollback()

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert locked.wait(10)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '300ms'")
        r = api.post("/auth/logout")
        assert r.status_code == 503, r.content
        assert r.json()["code"] == "service_unavailable"
    finally:
        release.set()
        thread.join(10)
        holder.close()
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = 0")
    token = AuthToken.objects.get(key_hash=key_hash)
    assert token.revoked_at is None
    assert AuditEvent.objects.count() == before
    # Once the head is free the same logout goes through, recorded.
    assert api.post("/auth/logout").status_code in (200, 204)
    assert AuthToken.objects.get(key_hash=key_hash).revoked_at is not None
    assert AuditEvent.objects.filter(action="auth.logout", actor_id=nurse.user.pk).count() == 1
