"""A prescription from approval to the patient's hands, across pharmacy, commerce and
delivery: nothing ships before it is approved, paid and dispensed (R6); picking it up
with the code completes the order; a shipment for an undispensed one is refused with
nothing written."""

from __future__ import annotations

from typing import Any

import pytest

from apps.commerce.models import Order
from apps.delivery.models import Shipment
from apps.pharmacy.models import Prescription
from tests.commerce.conftest import gateway  # noqa: F401  (fixture)
from tests.conftest import make_patient
from tests.delivery.conftest import sandbox  # noqa: F401  (fixture)

from .conftest import Rx
from .test_commerce_items import _approved, _checkout

pytestmark = pytest.mark.django_db


def test_approved_paid_dispensed_picked_up_completes_the_order(
    rx: Rx,
    gateway: Any,  # noqa: F811
    django_capture_on_commit_callbacks: Any,
) -> None:
    from apps.commerce import services as commerce

    pharm = rx.pharmacist.api()
    pid = _approved(rx)
    ship = {"source_kind": "pharmacy.prescription", "source_id": str(pid), "method": "pickup"}
    # Approved but unpaid: not shippable, nothing written.
    r = pharm.post("/delivery/shipments", ship)
    assert r.status_code == 409 and r.json()["code"] == "delivery.source_not_shippable", r.json()
    assert "发药" in r.json()["message"] and not Shipment.objects.exists()

    order = _checkout(rx, pid)
    with django_capture_on_commit_callbacks(execute=True):
        commerce.payment_notice_apply(gateway.pay(order.order_no))
    assert pharm.post("/delivery/shipments", ship).status_code == 409  # paid, not yet dispensed
    assert pharm.post(f"/pharmacy/prescriptions/{pid}/dispense").status_code == 200
    assert Prescription.objects.get(pk=pid).status == Prescription.Status.DISPENSED

    created = pharm.post("/delivery/shipments", ship)
    assert created.status_code == 201, created.json()
    sid = created.json()["id"]
    assert pharm.post(f"/delivery/shipments/{sid}/ready").status_code == 200
    code = rx.account.api().post(f"/delivery/my/shipments/{sid}/pickup-code").json()["code"]
    order.refresh_from_db()
    assert order.status == Order.Status.FULFILLING  # not in the patient's hands yet
    with django_capture_on_commit_callbacks(execute=True):
        verified = pharm.post(f"/delivery/shipments/{sid}/pickup/verify", {"code": code})
    assert verified.status_code == 200, verified.json()
    order.refresh_from_db()
    assert order.status == Order.Status.COMPLETED
    # The patient sees it all: the prescription dispensed, the shipment picked up, the order done.
    mine = rx.account.api().get(f"/delivery/my/shipments/{sid}").json()
    assert mine["status"] == "picked_up_by_patient", mine


def test_the_patients_choice_makes_the_shipment_at_dispensing_and_delivery_completes_the_order(
    rx: Rx,
    gateway: Any,  # noqa: F811
    sandbox: Any,  # noqa: F811
    django_capture_on_commit_callbacks: Any,
) -> None:
    from apps.accounts.models import ConsentRecord
    from apps.accounts.services import consent_set
    from apps.commerce import services as commerce
    from apps.delivery.services import address_create
    from tests.delivery.conftest import address_data

    patient = rx.account.api()
    pid = _approved(rx)
    address = address_create(user=rx.account.user, data=address_data(is_default=True))
    choose = {"method": "courier", "address_id": address.pk}
    # Courier needs the patient's consent to share name, phone and address with the courier.
    r = patient.post(f"/pharmacy/prescriptions/{pid}/delivery", choose)
    assert r.status_code == 409 and r.json()["code"] == "delivery.courier_consent_missing", r.json()
    assert Prescription.objects.get(pk=pid).delivery_method == ""
    # Another account's address, or another account choosing: refused, nothing stored.
    other = make_patient("13900000093", "旁人")
    consent_set(user=rx.account.user, purpose=ConsentRecord.Purpose.COURIER_SHARING, granted=True)
    theirs = address_create(user=other.user, data=address_data())
    wrong = patient.post(f"/pharmacy/prescriptions/{pid}/delivery", {**choose, "address_id": theirs.pk})
    assert wrong.status_code == 422 and wrong.json()["detail"]["field"] == "address_id"
    assert other.api().post(f"/pharmacy/prescriptions/{pid}/delivery", {"method": "pickup"}).status_code == 404
    r = patient.post(f"/pharmacy/prescriptions/{pid}/delivery", choose)
    assert r.status_code == 200 and r.json()["delivery_method_label"] == "快递到家", r.json()

    order = _checkout(rx, pid)
    with django_capture_on_commit_callbacks(execute=True):
        commerce.payment_notice_apply(gateway.pay(order.order_no))
    with django_capture_on_commit_callbacks(execute=True):
        assert rx.pharmacist.api().post(f"/pharmacy/prescriptions/{pid}/dispense").status_code == 200
    shipment = Shipment.objects.get(source_kind="pharmacy.prescription", source_id=str(pid))
    assert shipment.method == "courier" and shipment.status == "booked" and shipment.courier == "sandbox"
    # Dispensed: the choice is fixed now.
    r = patient.post(f"/pharmacy/prescriptions/{pid}/delivery", {"method": "pickup"})
    assert r.status_code == 409 and r.json()["code"] == "pharmacy.delivery_locked"
    for _ in range(4):  # accepted, picked up, in transit, delivered: the sandbox courier's signed pushes
        with django_capture_on_commit_callbacks(execute=True):
            step = rx.pharmacist.api().post(f"/delivery/sandbox/shipments/{shipment.pk}/step", {"action": "next"})
        assert step.status_code == 200, step.json()
    shipment.refresh_from_db()
    order.refresh_from_db()
    assert shipment.status == "delivered" and order.status == Order.Status.COMPLETED
