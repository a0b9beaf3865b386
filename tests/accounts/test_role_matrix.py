"""三权分立: what the system admin, security admin and auditor may each do."""

from __future__ import annotations

import pytest

from apps.accounts.models import AuthToken, LoginThrottle, User
from apps.accounts.roles import Role
from apps.audit.models import AuditEvent
from tests.conftest import make_staff

pytestmark = pytest.mark.django_db

ALLOW = {"sysadmin", "secadmin", "auditor"}


def _actions(target: User) -> dict[str, tuple[str, str, dict | None, set[str]]]:
    """action -> (method, path, body, roles allowed)."""
    return {
        "list_users": ("get", "/admin/users", None, {"sysadmin", "secadmin"}),
        "create_staff": (
            "post",
            "/admin/users",
            {"username": "newnurse", "display_name": "新护士", "role": "nurse"},
            {"sysadmin"},
        ),
        "disable_user": ("post", f"/admin/users/{target.pk}/disable", None, {"sysadmin"}),
        "change_role": ("post", f"/admin/users/{target.pk}/role", {"role": "therapist"}, {"secadmin"}),
        "unlock_user": ("post", f"/admin/users/{target.pk}/unlock", None, {"secadmin"}),
        "read_audit": ("get", "/audit/events", None, {"auditor"}),
        "verify_audit": ("post", "/audit/verify", None, {"auditor"}),
    }


ACTIONS = ["list_users", "create_staff", "disable_user", "change_role", "unlock_user", "read_audit", "verify_audit"]


@pytest.mark.parametrize("role", [Role.SYSADMIN, Role.SECADMIN, Role.AUDITOR, Role.DOCTOR, Role.PATIENT])
@pytest.mark.parametrize("action", ACTIONS)
def test_role_action_matrix(role: str, action: str) -> None:
    from tests.conftest import make_patient

    target = make_staff(Role.NURSE, "target").user
    actor = make_patient() if role == Role.PATIENT else make_staff(role, f"actor_{role}")
    method, path, body, allowed = _actions(target)[action]
    client = actor.api()
    r = client.get(path) if method == "get" else client.post(path, body)
    if role in allowed:
        assert r.status_code in (200, 201), (role, action, r.json())
    else:
        assert r.status_code == 403, (role, action, r.status_code)
        assert r.json()["code"] == "forbidden"
        assert AuditEvent.objects.filter(actor_id=actor.user.pk, result="denied").exists()
        # Nothing changed.
        target.refresh_from_db()
        assert target.is_active and target.role == Role.NURSE
        assert not User.objects.filter(username="newnurse").exists()


def test_sysadmin_cannot_create_admin_accounts(sysadmin) -> None:
    for role in ["sysadmin", "secadmin", "auditor", "patient"]:
        r = sysadmin.api().post("/admin/users", {"username": f"x{role}", "display_name": "x", "role": role})
        assert r.status_code == 403 and r.json()["code"] == "admin.forbidden_role"
    assert not User.objects.filter(username__startswith="x").exists()


def test_created_staff_get_a_one_time_password_and_totp_enrolment(sysadmin) -> None:
    r = sysadmin.api().post("/admin/users", {"username": "newdoc", "display_name": "新医生", "role": "doctor"})
    assert r.status_code == 201
    body = r.json()
    # The administrator never holds the TOTP secret: the doctor creates it at first sign-in.
    assert body["totp_enrolment_pending"] is True and "otpauth" not in str(body)
    user = User.objects.get(username="newdoc")
    assert user.totp_secret_enc == "" and user.totp_confirmed_at is None
    assert user.must_change_password and user.check_password(body["initial_password"])
    dup = sysadmin.api().post("/admin/users", {"username": "newdoc", "display_name": "x", "role": "nurse"})
    assert dup.status_code == 409 and dup.json()["code"] == "admin.username_taken"


def test_no_account_can_hold_two_admin_roles(secadmin, auditor, sysadmin) -> None:
    client = secadmin.api()
    # Moving an admin account to another admin role, or a staff account into one, is refused.
    for target, role in [
        (auditor.user, "sysadmin"),
        (sysadmin.user, "auditor"),
        (make_staff(Role.NURSE, "n2").user, "auditor"),
    ]:
        r = client.post(f"/admin/users/{target.pk}/role", {"role": role})
        assert r.status_code == 409 and r.json()["code"] == "admin.separation_of_duties"
        target.refresh_from_db()
        assert target.role != role
    assert client.post(f"/admin/users/{secadmin.user.pk}/role", {"role": "nurse"}).json()["code"] == "admin.self_action"


def test_sysadmin_cannot_disable_admin_accounts_or_itself(sysadmin, secadmin, auditor) -> None:
    client = sysadmin.api()
    for target in (secadmin.user, auditor.user):
        assert client.post(f"/admin/users/{target.pk}/disable").json()["code"] == "admin.separation_of_duties"
    assert client.post(f"/admin/users/{sysadmin.user.pk}/disable").json()["code"] == "admin.self_action"


def test_role_change_revokes_sessions_and_enrols_totp(secadmin) -> None:
    nurse = make_staff(Role.NURSE, "n3")
    nurse_client = nurse.api()
    r = secadmin.api().post(f"/admin/users/{nurse.user.pk}/role", {"role": "doctor"})
    assert r.status_code == 200 and r.json()["totp_enrolment_pending"] is True
    assert nurse_client.get("/accounts/me").status_code == 401
    assert not AuthToken.objects.filter(user=nurse.user, revoked_at__isnull=True).exists()
    assert AuditEvent.objects.filter(action="admin.role_change", object_id=str(nurse.user.pk)).exists()


def test_disable_revokes_sessions_and_unlock_clears_the_lock(sysadmin, secadmin) -> None:
    nurse = make_staff(Role.NURSE, "n4")
    nurse_client = nurse.api()
    LoginThrottle.objects.create(username="n4", ip="1.2.3.4", failures=5)
    assert secadmin.api().post(f"/admin/users/{nurse.user.pk}/unlock").status_code == 200
    assert not LoginThrottle.objects.filter(username="n4").exists()
    assert sysadmin.api().post(f"/admin/users/{nurse.user.pk}/disable").json()["is_active"] is False
    assert nurse_client.get("/accounts/me").status_code == 401


def test_auditor_reads_are_audited_and_admin_list_masks_phones(auditor, sysadmin) -> None:
    client = auditor.api()
    before = AuditEvent.objects.filter(action="audit.read").count()
    assert client.get("/audit/events", limit=5).json()["count"] >= 1
    assert AuditEvent.objects.filter(action="audit.read").count() == before + 1
    assert client.post("/audit/verify").json()["ok"] is True
    nurse = make_staff(Role.NURSE, "n5")
    nurse.user.set_phone("13912345678")
    nurse.user.save()
    rows = sysadmin.api().get("/admin/users", q="n5").json()["items"]
    assert rows[0]["phone_masked"] == "139****5678"
