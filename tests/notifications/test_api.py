"""/api/v1/notifications/: inbox, preferences, grants, the demo's sandbox SMS."""

from __future__ import annotations

import pytest

from apps.accounts.models import MiniProgramIdentity
from apps.notifications import services
from tests.conftest import Api, make_patient

pytestmark = pytest.mark.django_db


def test_the_sandbox_inbox_is_hidden_unless_the_demo_turns_it_on(settings, django_capture_on_commit_callbacks) -> None:
    api = Api()
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post("/auth/sms/send", {"phone": "13700009999"}).status_code == 200
    settings.SANDBOX_INBOX_VISIBLE = False
    assert api.get("/notifications/sandbox/sms", phone="13700009999").json() == {
        "visible": False,
        "text": "",
        "sent_at": None,
    }
    settings.SANDBOX_INBOX_VISIBLE = True
    shown = api.get("/notifications/sandbox/sms", phone="13700009999").json()
    assert shown["visible"] is True and "验证码为" in shown["text"]
    # Another phone sees nothing of it.
    assert api.get("/notifications/sandbox/sms", phone="13700008888").json()["text"] == ""
    # Never in production, whatever the flag says.
    settings.PRODUCTION = True
    assert api.get("/notifications/sandbox/sms", phone="13700009999").json()["visible"] is False


def test_inbox_and_preferences(django_capture_on_commit_callbacks) -> None:
    p = make_patient("13800007777")
    other = make_patient("13800007778")
    with django_capture_on_commit_callbacks(execute=True):
        services.notify_user(
            user=p.user, template="notice", params={"title": "新消息", "text": "您有1条"}, dedupe_key="i1"
        )
    api = p.api()
    items = api.get("/notifications/inbox").json()["items"]
    assert [(i["title"], i["text"]) for i in items] == [("新消息", "您有1条")]
    assert other.api().get("/notifications/inbox").json()["items"] == []
    r = api.client.put(
        "/api/v1/notifications/preferences",
        '{"channels": {"sms": false}, "quiet_start": "22:00:00", "quiet_end": "07:30:00"}',
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {api.token}",
    )
    assert r.status_code == 200, r.json()
    body = r.json()
    assert {c["channel"]: c["enabled"] for c in body["channels"]}["sms"] is False
    assert (body["quiet_start"], body["quiet_end"]) == ("22:00:00", "07:30:00")
    assert services.channel_enabled(p.user, "sms") is False
    bad = api.client.put(
        "/api/v1/notifications/preferences",
        '{"channels": {"fax": true}}',
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {api.token}",
    )
    assert bad.status_code == 422 and bad.json()["code"] == "notifications.unknown_channel"
    assert Api().get("/notifications/inbox").status_code == 401


def test_subscribe_grants_need_a_wechat_identity() -> None:
    p = make_patient("13800007779")
    api = p.api()
    r = api.post("/notifications/subscriptions", {"template": "notice"})
    assert r.status_code == 409 and r.json()["code"] == "notifications.no_wechat_identity"
    MiniProgramIdentity.objects.create(user=p.user, platform="weixin", openid="o-wx-9")
    r = api.post("/notifications/subscriptions", {"template": "notice"})
    assert r.status_code == 200 and r.json() == {"template": "notice", "unused_grants": 1}


def test_production_refuses_to_start_with_the_sandbox_inbox_on(tmp_path) -> None:
    import base64
    import os
    import secrets
    import subprocess
    import sys
    from pathlib import Path

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
        "SANDBOX_INBOX_VISIBLE": "1",
    }
    root = Path(__file__).resolve().parents[2]
    run = subprocess.run([sys.executable, "manage.py", "check"], cwd=root, env=env, capture_output=True, text=True)
    assert run.returncode != 0 and "SANDBOX_INBOX_VISIBLE must not be set in production" in run.stderr
    # Production's default is off.
    del env["SANDBOX_INBOX_VISIBLE"]
    code = "from django.conf import settings; import django; django.setup(); print(settings.SANDBOX_INBOX_VISIBLE)"
    run = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True)
    assert run.stdout.strip() == "False", run.stderr
