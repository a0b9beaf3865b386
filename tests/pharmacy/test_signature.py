"""The CA signature: the sandbox really signs and fails like a CA; any change
after signing (even in SQL) fails verification and blocks every next step."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from apps.core.models import TransitionEvent
from apps.pharmacy import ca, services
from apps.pharmacy.models import CaCertificate, Prescription
from apps.pharmacy.signing import content_digest, signature_valid

from .conftest import PIN, Rx, enrol, make_doctor
from .test_flow import create, sign_and_submit


def _unsigned(pid: int) -> None:
    p = Prescription.objects.get(pk=pid)
    assert p.status == "draft" and not p.signature and not p.content_digest and p.issued_at is None
    assert not TransitionEvent.objects.filter(object_id=str(pid), action="sign").exists()


def _sign(rx: Rx, pid: int, pin: str = PIN) -> Any:
    return rx.doctor.api().post(f"/pharmacy/prescriptions/{pid}/sign", {"pin": pin})


@pytest.mark.django_db
def test_the_sandbox_signature_is_a_real_ecdsa_signature_over_the_digest(rx: Rx) -> None:
    pid = create(rx)
    assert _sign(rx, pid).status_code == 200
    p = Prescription.objects.get(pk=pid)
    assert p.content_digest == content_digest(p).hex() and signature_valid(p)
    sig = ca.Signature(p.signature_algorithm, p.signature, p.cert_serial, p.issued_at)  # type: ignore[arg-type]
    signer = ca.SandboxCaSigner()
    assert signer.verify(p.doctor, content_digest(p), sig)
    assert not signer.verify(p.doctor, bytes(32), sig)  # another digest
    assert not signer.verify(make_doctor("someone").user, content_digest(p), sig)  # not their certificate
    cert = CaCertificate.objects.get(doctor=rx.doctor.user)
    assert "BEGIN CERTIFICATE" in cert.certificate_pem and "PRIVATE KEY" not in cert.private_key_enc


@pytest.mark.django_db
def test_a_line_tampered_in_sql_after_signing_fails_verification(rx: Rx) -> None:
    pid = create(rx)
    sign_and_submit(rx, pid)
    with connection.cursor() as cur:
        cur.execute("UPDATE pharmacy_prescriptionline SET days = 6 WHERE prescription_id = %s", [pid])
    p = Prescription.objects.get(pk=pid)
    assert signature_valid(p) is False
    detail = rx.pharmacist.api().get(f"/pharmacy/prescriptions/{pid}").json()
    assert detail["signature_valid"] is False
    r = rx.pharmacist.api().post(f"/pharmacy/prescriptions/{pid}/approve", {})
    assert r.status_code == 409 and r.json()["code"] == "pharmacy.signature_invalid"
    assert Prescription.objects.get(pk=pid).status == "submitted"
    assert not TransitionEvent.objects.filter(object_id=str(pid), action="approve").exists()


@pytest.mark.django_db
def test_tampering_after_approval_blocks_payment(rx: Rx) -> None:
    pid = create(rx)
    sign_and_submit(rx, pid)
    assert rx.pharmacist.api().post(f"/pharmacy/prescriptions/{pid}/approve", {}).status_code == 200
    assert services.prescription_can_be_paid(pid)
    with connection.cursor() as cur:
        cur.execute("UPDATE pharmacy_prescriptionline SET quantity = 9 WHERE prescription_id = %s", [pid])
    assert services.prescription_can_be_paid(pid) is False
    with pytest.raises(services.PharmacyError) as exc:
        services.prescription_mark_paid(prescription_id=pid, payment_ref="o-1")
    assert exc.value.code == "pharmacy.signature_invalid"
    assert Prescription.objects.get(pk=pid).status == "approved" and Prescription.objects.get(pk=pid).paid_at is None


@pytest.mark.django_db
def test_a_wrong_pin_is_counted_and_locks_the_certificate(rx: Rx) -> None:
    pid = create(rx)
    for remaining in (4, 3, 2, 1):
        r = _sign(rx, pid, "000000")
        assert r.status_code == 422 and r.json()["code"] == "pharmacy.ca_pin_wrong"
        assert r.json()["detail"] == {"remaining": remaining}
        _unsigned(pid)
    r = _sign(rx, pid, "000000")
    assert r.status_code == 423 and r.json()["code"] == "pharmacy.ca_pin_locked"
    # locked: even the right PIN is refused until the lock ends
    r = _sign(rx, pid, PIN)
    assert r.status_code == 423
    _unsigned(pid)
    CaCertificate.objects.filter(doctor=rx.doctor.user).update(locked_until=timezone.now() - dt.timedelta(seconds=1))
    assert _sign(rx, pid, PIN).status_code == 200
    assert CaCertificate.objects.get(doctor=rx.doctor.user).pin_failures == 0


@pytest.mark.django_db
def test_an_expired_or_revoked_certificate_or_none_cannot_sign(rx: Rx) -> None:
    pid = create(rx)
    CaCertificate.objects.filter(doctor=rx.doctor.user).update(not_after=timezone.now() - dt.timedelta(minutes=1))
    r = _sign(rx, pid)
    assert r.status_code == 409 and r.json()["code"] == "pharmacy.ca_cert_expired"
    _unsigned(pid)
    CaCertificate.objects.all().delete()
    r = _sign(rx, pid)
    assert r.json()["code"] == "pharmacy.ca_no_certificate"
    enrol(rx.doctor)
    ca.SandboxCaSigner().revoke(rx.doctor.user)
    r = _sign(rx, pid)
    assert r.json()["code"] == "pharmacy.ca_cert_revoked"
    _unsigned(pid)


@pytest.mark.django_db
def test_a_certificate_row_edited_in_sql_no_longer_verifies(rx: Rx) -> None:
    pid = create(rx)
    assert _sign(rx, pid).status_code == 200
    other = make_doctor("forger")
    enrol(other)
    forged = CaCertificate.objects.get(doctor=other.user)
    # swap in another certificate (another key) under the doctor's serial
    CaCertificate.objects.filter(doctor=rx.doctor.user).update(certificate_pem=forged.certificate_pem)
    assert signature_valid(Prescription.objects.get(pk=pid)) is False


@pytest.mark.django_db
def test_the_sandbox_is_refused_in_production(rx: Rx) -> None:
    pid = create(rx)
    with override_settings(PRODUCTION=True):
        r = _sign(rx, pid)
        assert r.status_code == 503 and r.json()["code"] == "pharmacy.ca_unavailable"
        r = rx.doctor.api().post("/pharmacy/ca/enrol", {"pin": "135790"})
        assert r.status_code == 503
    _unsigned(pid)
    with override_settings(PHARMACY_CA_SIGNER=""):
        assert _sign(rx, pid).json()["code"] == "pharmacy.ca_unavailable"


@pytest.mark.django_db
def test_enrolment_through_the_api(rx: Rx) -> None:
    doc = make_doctor("newdoc")
    api = doc.api()
    assert api.get("/pharmacy/ca/certificate").json() == {
        "enrolled": False,
        "signer": "sandbox",
        "serial": "",
        "subject": "",
        "issuer": "",
        "not_before": None,
        "not_after": None,
        "revoked": False,
        "locked_until": None,
    }
    assert api.post("/pharmacy/ca/enrol", {"pin": "12ab"}).json()["code"] == "pharmacy.ca_pin_format"
    r = api.post("/pharmacy/ca/enrol", {"pin": "135790"})
    assert r.status_code == 201 and r.json()["enrolled"] is True
    assert api.post("/pharmacy/ca/enrol", {"pin": "135790"}).json()["code"] == "pharmacy.ca_already_enrolled"
    assert api.get("/pharmacy/ca/certificate").json()["serial"] == r.json()["serial"]
    assert rx.pharmacist.api().post("/pharmacy/ca/enrol", {"pin": "135790"}).status_code == 403


@pytest.mark.django_db
def test_production_settings_refuse_the_sandbox_ca() -> None:
    import os
    import subprocess
    import sys

    from tests.support.server import production_env

    env = {k: v for k, v in os.environ.items() if k not in ("HUB_ENV", "DJANGO_SETTINGS_MODULE")}
    code = "import hub.settings as s; print(repr(s.PHARMACY_CA_SIGNER))"
    ok = subprocess.run(
        [sys.executable, "-c", code], env={**env, **production_env()}, capture_output=True, text=True, check=False
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "''"  # production has no CA until one is configured
    refused = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, **production_env(PHARMACY_CA_SIGNER="sandbox")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode != 0 and "PHARMACY_CA_SIGNER=sandbox must not be used in production" in refused.stderr
