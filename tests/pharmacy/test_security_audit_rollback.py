"""security.md 3.15: when the audit record of a prescription signature or of a
pharmacist's approval cannot be written, the step rolls back as a whole. Another
connection holds the audit chain's head (as a stuck writer would) and this
connection gives up waiting: the client gets the 503 it can retry, the
prescription keeps its status (no signature stored, no transition, no audit
row). Once the head is free the same request goes through, recorded."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2
import pytest
from django.conf import settings
from django.db import connection

from apps.audit.models import AuditEvent
from apps.audit.services import audit_record
from apps.core.models import TransitionEvent
from apps.pharmacy import services
from apps.pharmacy.models import Prescription

from .conftest import PIN, Rx
from .test_flow import create, sign_and_submit

pytestmark = pytest.mark.django_db(transaction=True)


@contextmanager
def audit_head_held() -> Iterator[None]:
    """Hold the audit head's row lock on another connection; this one waits 300 ms at most."""
    audit_record(action="auth.login", actor_username="setup")  # the chain has a head to hold
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
        yield
    finally:
        release.set()
        thread.join(10)
        holder.close()
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = 0")


def _steps(pid: int) -> list[str]:
    return list(
        TransitionEvent.objects.filter(object_type="pharmacy.prescription", object_id=str(pid))
        .order_by("id")
        .values_list("action", flat=True)
    )


def test_a_signature_whose_audit_cannot_be_written_is_not_stored(rx: Rx) -> None:
    pid = create(rx)
    doc = rx.doctor.api()

    with audit_head_held():
        before = AuditEvent.objects.count()
        r = doc.post(f"/pharmacy/prescriptions/{pid}/sign", {"pin": PIN})
        assert r.status_code == 503, r.content
        assert r.json()["code"] == "service_unavailable"

    p = Prescription.objects.get(pk=pid)
    assert p.status == "draft" and not p.signature and not p.content_digest and p.signed_at is None
    assert _steps(pid) == []
    assert AuditEvent.objects.count() == before
    assert services.prescription_can_be_paid(pid) is False

    # Once the head is free the same signature goes through, recorded.
    r = doc.post(f"/pharmacy/prescriptions/{pid}/sign", {"pin": PIN})
    assert r.status_code == 200, r.content
    assert r.json()["status"] == "signed" and r.json()["signature_valid"] is True
    assert _steps(pid) == ["sign"]
    assert AuditEvent.objects.filter(action="pharmacy.prescription_sign", object_id=str(pid)).count() == 1


def test_an_approval_whose_audit_cannot_be_written_leaves_the_prescription_unpayable(rx: Rx) -> None:
    pid = create(rx)
    sign_and_submit(rx, pid)
    pharm = rx.pharmacist.api()

    with audit_head_held():
        before = AuditEvent.objects.count()
        r = pharm.post(f"/pharmacy/prescriptions/{pid}/approve", {"note": "已核对"})
        assert r.status_code == 503, r.content

    p = Prescription.objects.get(pk=pid)
    assert p.status == "submitted" and p.reviewed_by_id is None
    assert _steps(pid) == ["sign", "submit"]
    assert AuditEvent.objects.count() == before
    assert services.prescription_can_be_paid(pid) is False

    r = pharm.post(f"/pharmacy/prescriptions/{pid}/approve", {"note": "已核对"})
    assert r.status_code == 200 and r.json()["status"] == "approved"
    assert services.prescription_can_be_paid(pid) is True
    assert AuditEvent.objects.filter(action="pharmacy.prescription_approve", object_id=str(pid)).count() == 1
