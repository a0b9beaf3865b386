from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_health_and_readiness() -> None:
    client = Client()
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "redis": "ok"}


@pytest.mark.django_db
def test_readiness_fails_when_redis_is_unreachable(settings) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    ready = Client().get("/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["redis"] == "unavailable"


@pytest.mark.django_db
def test_api_errors_have_one_shape_and_security_headers(api) -> None:
    r = api.post("/auth/staff/login", {"username": "x"})
    assert r.status_code == 422
    body = r.json()
    assert set(body) == {"code", "message", "detail"} and body["code"] == "validation_error"
    assert body["detail"]["fields"][0]["field"] == "password"
    assert r["Cache-Control"] == "no-store"
    assert r["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in r["Content-Security-Policy"]
    assert r["X-Frame-Options"] == "DENY"
    assert len(r["X-Request-ID"]) == 32
    missing = api.get("/no/such/route")
    assert missing.status_code == 404


@pytest.mark.django_db
def test_every_api_route_requires_auth_unless_it_is_a_login_route(api) -> None:
    schema = Client().get("/api/v1/openapi.json").json()
    public = {
        "/api/v1/auth/staff/login",
        "/api/v1/auth/password/change",
        "/api/v1/auth/totp/enrolment",  # the 10-minute enrolment token of a first sign-in, in the body
        "/api/v1/auth/totp/confirm",
        "/api/v1/auth/sms/send",
        "/api/v1/auth/sms/login",
        "/api/v1/auth/miniprogram/login",
        "/api/v1/commerce/notify/{provider}",  # the gateway's signature is checked by the provider
        "/api/v1/commerce/notify/{provider}/refund",
        "/api/v1/notifications/sandbox/sms",  # visible: false unless the embedded demo turns it on
        "/api/v1/delivery/callbacks/{courier}",  # couriers' callbacks: the courier's signature authenticates
    }
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            if path in public:
                assert not op.get("security"), path
            else:
                assert op.get("security") == [{"BearerAuth": []}], (method, path)


# No sandbox in production (issue 11, finding 15): the outside channels this test
# deployment does not use are switched off explicitly.
PRODUCTION_ADAPTERS = {
    "MINIPROGRAM_ADAPTER": "apps.accounts.adapters.DisabledMiniProgram",
    "NOTIFY_SMS_ADAPTER": "apps.notifications.adapters.DisabledChannel",
    "NOTIFY_WECHAT_ADAPTER": "apps.notifications.adapters.DisabledChannel",
    "NOTIFY_ALIPAY_ADAPTER": "apps.notifications.adapters.DisabledChannel",
}


def test_production_settings_pass_the_deploy_check(tmp_path: Path) -> None:
    key = lambda: base64.b64encode(secrets.token_bytes(32)).decode()  # noqa: E731
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "hub.settings",
        "HUB_ENV": "production",
        "HUB_VAR_DIR": str(tmp_path),
        "SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEY": key(),
        "LOOKUP_HASH_KEY": key(),
        "AUDIT_HMAC_KEY": key(),
        "GRANT_SIGNING_KEY": key(),
        "SANDBOX_SECRET": key(),
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/postgres",
        "REDIS_URL": "redis://127.0.0.1:6379/2",
        "ALLOWED_HOSTS": "ih.example-hospital.cn",
        **PRODUCTION_ADAPTERS,
    }
    run = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    # Issue 11, finding 15: production serves no API docs or schema and runs without DEBUG.
    probe = (
        "import django; django.setup();"
        "from django.conf import settings; from django.test import Client;"
        "c = Client(SERVER_NAME='ih.example-hospital.cn');"
        "get = lambda p: c.get(p, secure=True).status_code;"
        "print(settings.DEBUG, get('/api/v1/docs'), get('/api/v1/openapi.json'))"
    )
    run = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True)
    assert run.stdout.split() == ["False", "404", "404"], run.stdout + run.stderr
    # The default (sandbox) adapters fail the check, naming each.
    sandboxed = {k: v for k, v in env.items() if k not in PRODUCTION_ADAPTERS}
    cmd = [sys.executable, "manage.py", "check"]
    run = subprocess.run(cmd, cwd=ROOT, env=sandboxed, capture_output=True, text=True)
    assert run.returncode != 0 and "hub.E010" in run.stderr and "SandboxMiniProgram" in run.stderr, run.stderr
    # And production refuses to start without its secrets.
    del env["FIELD_ENCRYPTION_KEY"]
    run = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert run.returncode != 0 and "FIELD_ENCRYPTION_KEY must be set" in run.stderr


def test_sql_values_are_normalised_for_sqlite_and_postgres() -> None:
    import datetime as dt

    from hub.sqlutil import as_datetime, as_json

    utc = dt.UTC
    assert as_datetime("2026-11-26 15:17:40.322900") == dt.datetime(2026, 11, 26, 15, 17, 40, 322900, tzinfo=utc)
    assert as_datetime(dt.datetime(2026, 1, 1)) == dt.datetime(2026, 1, 1, tzinfo=utc)
    aware = dt.datetime(2026, 1, 1, tzinfo=utc)
    assert as_datetime(aware) is aware and as_datetime(None) is None
    assert as_json('{"text": "你好"}') == {"text": "你好"} and as_json({"a": 1}) == {"a": 1}
