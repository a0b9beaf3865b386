"""Chromium, issue 12's whole path: a doctor prescribes, the pharmacist approves in the
console, the patient chooses 快递到家 and pays in the H5 app through the sandbox pay
sheet, the pharmacy dispenses (the shipment is booked with the sandbox courier), the
courier's signed pushes take it to 已签收, and the patient's pages follow every status
change live without reloading; the order ends 已完成."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from apps.accounts.models import ConsentRecord
from apps.accounts.roles import Role
from apps.accounts.services import consent_set, token_issue
from apps.care_team.models import CareRelationship
from apps.care_team.services import relationship_open
from apps.commerce.models import Order, Payment
from apps.delivery.models import Shipment
from apps.delivery.services import address_create
from apps.pharmacy import services as rx_services
from apps.pharmacy.models import Prescription
from apps.pharmacy.rules import DraftInput, LineInput
from tests.conftest import add_patient, make_patient, make_staff
from tests.delivery.conftest import address_data
from tests.e2e.conftest import _screenshots
from tests.e2e.helpers import console_login, patient_login
from tests.e2e.test_patient_orders import start_shop_server
from tests.pharmacy.conftest import PIN, enrol, make_doctor

pytestmark = pytest.mark.e2e

PHONE = "13612340431"


@pytest.fixture
def door_server(transactional_db: Any, settings: Any, tmp_path: Path) -> Iterator[str]:
    # The sandbox courier moves only when told (the console's 沙箱推进 / the step API), not on a timer.
    yield from start_shop_server(settings, tmp_path, DELIVERY_SANDBOX_STEP_SECONDS="0")


def _post(url: str, token: str, body: dict[str, Any] | None = None) -> Any:
    req = urllib.request.Request(
        url,
        data=json.dumps(body or {}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(req, timeout=30) as answer:
        return json.loads(answer.read() or b"{}")


def _submitted_prescription(patient: Any) -> tuple[Prescription, Any]:
    doctor = make_doctor("doordoc")
    relationship_open(staff=doctor.user, patient=patient, reason=CareRelationship.Reason.CARE_PLAN)
    enrol(doctor)
    p = rx_services.prescription_create(
        doctor=doctor.user,
        patient_id=patient.pk,
        draft=DraftInput(
            diagnosis="原发性高血压（2级），复诊续方",
            icd10_code="I10",
            valid_days=3,
            lines=[
                LineInput(
                    drug_code="AMLO-5", dose=Decimal("5"), frequency="qd", route="po", days=7, quantity=Decimal("1")
                )
            ],
        ),
    )
    rx_services.prescription_sign(doctor=doctor.user, prescription_id=p.pk, pin=PIN)
    return rx_services.prescription_submit(doctor=doctor.user, prescription_id=p.pk), doctor


def test_prescribed_approved_paid_shipped_delivered_followed_live(
    door_server: str, patient_page: Any, console_page: Any
) -> None:
    url, page, ph = door_server, patient_page, console_page
    account = make_patient(PHONE, "孙丽")
    me = add_patient(account, "孙丽")
    address_create(user=account.user, data=address_data(recipient_name="孙丽", is_default=True))
    consent_set(user=account.user, purpose=ConsentRecord.Purpose.COURIER_SHARING, granted=True)
    pharmacist = make_staff(Role.PHARMACIST, "doorph")
    rx, _doctor = _submitted_prescription(me)

    # --- the pharmacist approves it in the console ----------------------------------------------
    console_login(ph, url, "doorph", pharmacist)
    ph.goto(f"{url}/console/#/pharmacy/review")
    item = ph.locator(f"[data-testid=review-item][data-number='{rx.number}']")
    expect(item).to_be_visible()
    ph.click("[data-testid=review-approve]")
    expect(ph.locator("[data-testid=review-empty]")).to_be_visible()
    _screenshots.shoot(ph, "door-review-done-")
    rx.refresh_from_db()
    assert rx.status == Prescription.Status.APPROVED

    # --- the patient picks 快递到家 and pays on the sandbox sheet -----------------------------------
    patient_login(page, url, PHONE)
    page.goto(f"{url}/h5/#/pages/prescriptions/detail?id={rx.pk}")
    expect(page.locator("[data-testid=rx-detail-status]")).to_have_text("待支付")
    expect(page.locator("[data-testid=rx-delivery-courier]")).to_contain_text("孙丽")
    page.click("[data-testid=rx-delivery-courier]")
    expect(page.locator("[data-testid=rx-delivery-note]")).to_contain_text("已选择快递到家")
    _screenshots.shoot(page, "door-rx-courier-")
    page.click("[data-testid=rx-pay]")
    expect(page.locator("[data-testid=pay-sheet]")).to_be_visible()
    page.click("[data-testid=pay-confirm]")
    expect(page.locator("[data-testid=pay-success]")).to_contain_text("支付成功", timeout=20000)
    _screenshots.shoot(page, "door-paid-")
    order = Order.objects.get(items__kind="prescription", items__ref=str(rx.pk))
    assert Payment.objects.filter(order=order, status=Payment.Status.SUCCEEDED).count() == 1
    rx.refresh_from_db()
    assert rx.status == Prescription.Status.PAID

    # --- dispensed: the shipment is booked with the courier; the patient watches it -------------
    ph_token = token_issue(user=pharmacist.user).raw
    _post(f"{url}/api/v1/pharmacy/prescriptions/{rx.pk}/dispense", ph_token)
    shipment = Shipment.objects.get(source_kind="pharmacy.prescription", source_id=str(rx.pk))
    assert (shipment.method, shipment.courier, shipment.status) == ("courier", "sandbox", "booked")
    page.goto(f"{url}/h5/#/pages/orders/shipment?id={shipment.pk}")
    status = page.locator("[data-testid=shipment-detail-status]")
    expect(status).to_be_visible()
    page.evaluate("window.__sameDocument = 'yes'")  # gone if anything reloads the page
    seen = [status.inner_text()]
    for _ in range(4):  # accepted, picked up, in transit, delivered: signed pushes of the sandbox courier
        before = status.inner_text()
        _post(f"{url}/api/v1/delivery/sandbox/shipments/{shipment.pk}/step", ph_token, {"action": "next"})
        expect(status).not_to_have_text(before, timeout=15000)
        seen.append(status.inner_text())
        _screenshots.shoot(page, f"door-shipment-{len(seen)}-")
    assert page.evaluate("window.__sameDocument") == "yes"
    assert len(set(seen)) == 5, seen
    expect(page.locator("[data-testid=shipment-event]")).to_have_count(4)
    shipment.refresh_from_db()
    order.refresh_from_db()
    assert shipment.status == "delivered" and order.status == Order.Status.COMPLETED

    # The order page says so too.
    page.goto(f"{url}/h5/#/pages/orders/detail?no={order.order_no}")
    expect(page.locator("[data-testid=order-detail-status]")).to_have_text("已完成")
    _screenshots.shoot(page, "door-order-done-")
    assert page.errors == [] and ph.errors == []
