"""Issue 11, finding 15: production refuses the sandbox SMS, notification and
mini-program adapters; login codes never reach the logs.

The probe ran a production-configured hub on the default adapters: the SMS
sandbox "sent" login codes nobody received and the mini-program sandbox
accepted codes it had signed itself. Now a sandbox is refused when it would be
used (nothing sent, nothing recorded), the ``hub.E010`` system check and the
ASGI startup guard name every configured sandbox, and neither the embedded nor a
production run logs a code at any level."""

from __future__ import annotations

import json
import logging

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from apps.accounts.adapters import SandboxMiniProgram
from apps.accounts.models import MiniProgramIdentity, SandboxOutbox, User
from apps.notifications.models import Notification
from hub import crypto
from hub.outside import SandboxInProduction, configured_sandboxes, refuse_sandboxes_in_production
from tests.conftest import Api

REAL_NOTIFY = {
    "inapp": "apps.notifications.adapters.InAppAdapter",
    "sms": "apps.notifications.adapters.InAppAdapter",
    "wechat_subscribe": "apps.notifications.adapters.InAppAdapter",
    "alipay_template": "apps.notifications.adapters.InAppAdapter",
}


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    cache.clear()


def test_every_default_adapter_is_a_listed_sandbox() -> None:
    found = dict(configured_sandboxes())
    assert "MINIPROGRAM_ADAPTER" in found
    paths = {path for _, path in configured_sandboxes()}
    assert {
        "apps.accounts.adapters.SandboxMiniProgram",
        "apps.notifications.adapters.SandboxSms",
        "apps.notifications.adapters.SandboxWechatSubscribe",
        "apps.notifications.adapters.SandboxAlipayTemplate",
        "apps.pharmacy.ca.SandboxCaSigner",
        "apps.commerce.payments.sandbox.SandboxWechatPay",
        "apps.commerce.receipts.sandbox.SandboxReceiptPlatform",
        "apps.delivery.couriers.sandbox.SandboxCourier",
        "apps.delivery.privacy.SandboxPrivacyNumbers",
        "apps.consultations.his.SandboxHisClient",
    } <= paths
    # The in-app channel is ours, not an outside party: never listed.
    assert "apps.notifications.adapters.InAppAdapter" not in paths


def test_the_startup_guard_and_the_system_check_refuse_sandboxes_in_production_only() -> None:
    refuse_sandboxes_in_production()  # embedded/test: allowed
    call_command("check")
    with override_settings(PRODUCTION=True):
        with pytest.raises(SandboxInProduction) as exc:
            refuse_sandboxes_in_production()
        assert "MINIPROGRAM_ADAPTER=apps.accounts.adapters.SandboxMiniProgram" in str(exc.value)
        assert "SandboxSms" in str(exc.value)
        with pytest.raises(SystemCheckError, match=r"hub\.E010"):
            call_command("check")
    # Real (non-sandbox) notification adapters clear those; the mini-program sandbox still stops it.
    with override_settings(PRODUCTION=True, NOTIFY_ADAPTERS=REAL_NOTIFY):
        with pytest.raises(SandboxInProduction) as exc:
            refuse_sandboxes_in_production()
        assert "NOTIFY_ADAPTERS" not in str(exc.value) and "MINIPROGRAM_ADAPTER" in str(exc.value)


@pytest.mark.django_db
def test_production_refuses_the_mini_program_sandbox_and_creates_no_account(api: Api) -> None:
    code = SandboxMiniProgram.issue_code(platform="weixin", openid="o-prod-probe")
    users = User.objects.count()
    with override_settings(PRODUCTION=True):
        r = api.post("/auth/miniprogram/login", {"platform": "weixin", "code": code})
    assert r.status_code == 503, r.json()
    assert r.json()["code"] == "auth.miniprogram_unavailable"
    assert "手机号" in r.json()["message"]
    assert User.objects.count() == users
    assert not MiniProgramIdentity.objects.filter(openid="o-prod-probe").exists()
    # The same code outside production logs in (the refusal was the sandbox, not the code).
    ok = api.post("/auth/miniprogram/login", {"platform": "weixin", "code": code})
    assert ok.status_code == 200, ok.json()


@pytest.mark.django_db(transaction=True)
def test_production_sends_no_sms_through_the_sandbox_and_logs_no_code(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    phone = "13712340915"
    recipient = crypto.lookup_hash(phone, context="phone")
    caplog.set_level(logging.DEBUG)
    with override_settings(PRODUCTION=True):
        r = api.post("/auth/sms/send", {"phone": phone})
    # The code is stored (hashed) and the SMS waits in the outbox for a real gateway.
    assert r.status_code == 200, r.json()
    assert not SandboxOutbox.objects.filter(recipient_hash=recipient).exists()
    row = Notification.objects.filter(channel="sms").latest("id")
    assert row.status == Notification.Status.PENDING and row.sent_at is None
    assert "SandboxSms" in row.last_error
    code = json.loads(crypto.decrypt(row.params_enc, context="notification.params"))["code"]
    messages = [record.getMessage() for record in caplog.records]
    assert not any(code in m or phone in m for m in messages), messages


@pytest.mark.django_db(transaction=True)
def test_the_embedded_sandbox_sends_the_code_and_logs_only_the_masked_phone(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    phone = "13712340916"
    caplog.set_level(logging.DEBUG)
    r = api.post("/auth/sms/send", {"phone": phone})
    assert r.status_code == 200, r.json()
    body = SandboxOutbox.objects.get(recipient_hash=crypto.lookup_hash(phone, context="phone")).body
    code = body.split("验证码为")[1][:6]
    messages = [record.getMessage() for record in caplog.records]
    assert any("137****0916" in m for m in messages), messages
    assert not any(code in m or phone in m for m in messages), messages


@pytest.mark.django_db(transaction=True)
def test_switched_off_channels_answer_clearly_and_send_nothing(api: Api) -> None:
    code = SandboxMiniProgram.issue_code(platform="alipay", openid="o-off-probe")
    with override_settings(
        PRODUCTION=True,
        MINIPROGRAM_ADAPTER="apps.accounts.adapters.DisabledMiniProgram",
        NOTIFY_ADAPTERS={**REAL_NOTIFY, "sms": "apps.notifications.adapters.DisabledChannel"},
        PHARMACY_CA_SIGNER="",
        PAYMENT_PROVIDERS={},
        RECEIPTS_PLATFORM="",
        DELIVERY_COURIERS={"sf": "apps.delivery.couriers.sf.SfExpress"},
        DELIVERY_PRIVACY_NUMBERS="apps.delivery.privacy.DirectNumbers",
        CONSULT_HIS_ADAPTER="",
    ):
        refuse_sandboxes_in_production()  # a deployment that switched them off starts
        r = api.post("/auth/miniprogram/login", {"platform": "alipay", "code": code})
        assert r.status_code == 503 and r.json()["code"] == "auth.miniprogram_unavailable", r.json()
        assert not MiniProgramIdentity.objects.filter(openid="o-off-probe").exists()
        phone = "13712340917"
        assert api.post("/auth/sms/send", {"phone": phone}).status_code == 200
    row = Notification.objects.filter(channel="sms").latest("id")
    # Switched off is final (not retried), and nothing reached any outbox.
    assert row.status == Notification.Status.FAILED and "channel_disabled" in row.last_error
    assert not SandboxOutbox.objects.filter(recipient_hash=crypto.lookup_hash(phone, context="phone")).exists()
