"""security.md 5.5: a prescription changed in SQL after it was paid or dispensed
fails its integrity check, and dispensing and shipping refuse it with nothing
written (the payment and approval steps are in tests/pharmacy/test_signature.py)."""

from __future__ import annotations

import pytest
from django.db import connection

from apps.core.models import TransitionEvent
from apps.delivery.models import Shipment
from apps.pharmacy import services
from apps.pharmacy.models import Prescription

from .conftest import Rx
from .test_flow import create, sign_and_submit

pytestmark = pytest.mark.django_db


def _approved_and_paid(rx: Rx) -> int:
    pid = create(rx)
    sign_and_submit(rx, pid)
    assert rx.pharmacist.api().post(f"/pharmacy/prescriptions/{pid}/approve", {}).status_code == 200
    services.prescription_mark_paid(prescription_id=pid, payment_ref="order-integrity")
    return pid


def _tamper(pid: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("UPDATE pharmacy_prescriptionline SET quantity = 9 WHERE prescription_id = %s", [pid])


def test_a_paid_prescription_changed_in_sql_is_not_dispensed(rx: Rx) -> None:
    pid = _approved_and_paid(rx)
    assert services.prescription_can_be_dispensed(pid) is True
    _tamper(pid)
    assert services.prescription_can_be_dispensed(pid) is False
    r = rx.pharmacist.api().post(f"/pharmacy/prescriptions/{pid}/dispense")
    assert r.status_code == 409 and r.json()["code"] == "pharmacy.signature_invalid"
    assert Prescription.objects.get(pk=pid).status == "paid"
    assert not TransitionEvent.objects.filter(object_id=str(pid), action="dispense").exists()


def test_a_dispensed_prescription_changed_in_sql_is_not_shipped(rx: Rx) -> None:
    pid = _approved_and_paid(rx)
    assert rx.pharmacist.api().post(f"/pharmacy/prescriptions/{pid}/dispense").status_code == 200
    assert services.prescription_can_be_shipped(pid) is True
    _tamper(pid)
    assert services.prescription_can_be_shipped(pid) is False
    ship = {"source_kind": "pharmacy.prescription", "source_id": str(pid), "method": "pickup"}
    r = rx.pharmacist.api().post("/delivery/shipments", ship)
    assert r.status_code == 409 and r.json()["code"] == "delivery.source_not_shippable"
    assert not Shipment.objects.exists()
