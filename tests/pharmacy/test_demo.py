"""The demo seeder fills the review queue, the doctor's revision to-do and the patient's 去支付, once."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from apps.accounts.models import User
from apps.pharmacy.models import Prescription
from apps.pharmacy.selectors import prescription_can_be_paid
from apps.pharmacy.signing import signature_valid
from apps.todos.registry import todos_for


@pytest.mark.django_db
def test_seed_demo_adds_prescriptions_once() -> None:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert "处方" in out.getvalue()
    statuses = sorted(Prescription.objects.values_list("status", flat=True))
    assert statuses == ["approved", "rejected", "submitted"]
    assert all(signature_valid(p) for p in Prescription.objects.select_related("patient", "doctor"))
    pharmacist = User.objects.get(username="pharmacist")
    doctor = User.objects.get(username="doctor")
    assert "pharmacy.prescriptions_to_review" in [t.kind for t in todos_for(pharmacist)[0]]
    assert "pharmacy.prescriptions_to_revise" in [t.kind for t in todos_for(doctor)[0]]
    # Exactly one can be paid in the app: the approved one.
    assert [p.status for p in Prescription.objects.all() if prescription_can_be_paid(p.pk)] == ["approved"]
    call_command("seed_demo", stdout=StringIO())
    assert Prescription.objects.count() == 3


@pytest.mark.django_db
def test_a_demo_started_after_expiry_gets_a_fresh_queue() -> None:
    from apps.pharmacy.services import prescriptions_expire_due

    call_command("seed_demo", stdout=StringIO())
    latest = max(p.expires_at for p in Prescription.objects.all() if p.expires_at)
    assert prescriptions_expire_due(now=latest) == 3
    call_command("seed_demo", stdout=StringIO())
    assert sorted(Prescription.objects.values_list("status", flat=True)) == [
        "approved",
        "expired",
        "expired",
        "expired",
        "rejected",
        "submitted",
    ]
