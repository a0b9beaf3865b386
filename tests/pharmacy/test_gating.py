"""R6: no payment, dispensing or delivery before a pharmacist approves."""

from __future__ import annotations

import pytest

from apps.core.models import TransitionEvent
from apps.pharmacy import services
from apps.pharmacy.errors import PharmacyError
from apps.pharmacy.models import Prescription

from .conftest import PIN, Rx
from .test_flow import create, sign_and_submit


def _steps(pid: int) -> list[str]:
    return list(TransitionEvent.objects.filter(object_id=str(pid)).order_by("id").values_list("action", flat=True))


@pytest.mark.django_db
def test_an_unapproved_prescription_cannot_be_paid_dispensed_or_shipped(rx: Rx) -> None:
    draft_id = create(rx)
    signed_id = create(rx)
    rx.doctor.api().post(f"/pharmacy/prescriptions/{signed_id}/sign", {"pin": PIN})
    submitted_id = create(rx)
    sign_and_submit(rx, submitted_id)
    rejected_id = create(rx)
    sign_and_submit(rx, rejected_id)
    rx.pharmacist.api().post(f"/pharmacy/prescriptions/{rejected_id}/reject", {"reason": "剂量需核对"})

    for pid in (draft_id, signed_id, submitted_id, rejected_id):
        before = _steps(pid)
        status = Prescription.objects.get(pk=pid).status
        assert services.prescription_can_be_paid(pid) is False
        assert services.prescription_can_be_dispensed(pid) is False
        assert services.prescription_can_be_shipped(pid) is False
        with pytest.raises(PharmacyError) as paid:
            services.prescription_mark_paid(prescription_id=pid, payment_ref="order-x")
        assert paid.value.code == "pharmacy.not_approved" and paid.value.status == 409
        r = rx.pharmacist.api().post(f"/pharmacy/prescriptions/{pid}/dispense")
        # the pharmacist never sees a draft (404); the others are refused as unpaid
        assert r.status_code in (404, 409)
        if r.status_code == 409:
            assert r.json()["code"] == "pharmacy.not_paid"
        p = Prescription.objects.get(pk=pid)
        assert p.status == status and p.paid_at is None and p.payment_ref == "" and p.dispensed_at is None
        assert _steps(pid) == before


@pytest.mark.django_db
def test_an_approved_but_unpaid_prescription_cannot_be_dispensed(rx: Rx) -> None:
    pid = create(rx)
    sign_and_submit(rx, pid)
    rx.pharmacist.api().post(f"/pharmacy/prescriptions/{pid}/approve", {})
    r = rx.pharmacist.api().post(f"/pharmacy/prescriptions/{pid}/dispense")
    assert r.status_code == 409 and r.json()["code"] == "pharmacy.not_paid"
    assert services.prescription_can_be_dispensed(pid) is False
    assert Prescription.objects.get(pk=pid).status == "approved"
    # paid once: the same payment again is a no-op, another payment is refused
    services.prescription_mark_paid(prescription_id=pid, payment_ref="order-1")
    steps = _steps(pid)
    services.prescription_mark_paid(prescription_id=pid, payment_ref="order-1")
    assert _steps(pid) == steps and steps[-1] == "pay"
    with pytest.raises(PharmacyError) as again:
        services.prescription_mark_paid(prescription_id=pid, payment_ref="order-2")
    assert again.value.code == "pharmacy.not_approved"
    assert Prescription.objects.get(pk=pid).payment_ref == "order-1" and _steps(pid) == steps


@pytest.mark.django_db
def test_an_unknown_prescription_is_not_payable() -> None:
    assert services.prescription_can_be_paid(987654) is False
    assert services.prescription_can_be_dispensed(987654) is False


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicate_payment_marks_record_one_payment() -> None:
    import threading

    from django.db import connection

    from apps.care_team.models import CareRelationship
    from apps.care_team.services import relationship_open
    from tests.conftest import make_patient, make_staff

    from .conftest import add_patient, enrol, make_doctor

    doctor = make_doctor("paydoc")
    pharmacist = make_staff("pharmacist", "paypharm")
    account = make_patient("13900000081", "孙八")
    me = add_patient(account, "孙八")
    relationship_open(staff=doctor.user, patient=me, reason=CareRelationship.Reason.CARE_PLAN)
    enrol(doctor)
    rx = Rx(doctor=doctor, pharmacist=pharmacist, account=account, me=me, child=me)
    pid = create(rx)
    sign_and_submit(rx, pid)
    rx.pharmacist.api().post(f"/pharmacy/prescriptions/{pid}/approve", {})

    barrier = threading.Barrier(5)
    outcomes: list[str] = []

    def pay() -> None:
        try:
            barrier.wait()
            services.prescription_mark_paid(prescription_id=pid, payment_ref="order-77")
            outcomes.append("ok")
        except PharmacyError as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=pay) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes == ["ok"] * 5
    assert _steps(pid).count("pay") == 1
    assert Prescription.objects.get(pk=pid).status == "paid"


@pytest.mark.django_db
def test_the_charge_commerce_puts_on_the_order(rx: Rx) -> None:
    from .conftest import line

    pid = create(rx, lines=[line(), line("ATOR-20", dose="20", frequency="qn", quantity="1")])
    charge = services.prescription_charge(pid)
    assert charge is not None
    assert [(i["drug_code"], i["quantity"], i["unit_price_amount"], i["amount"]) for i in charge["items"]] == [
        ("AMLO-5", "1", 3550, 3550),
        ("ATOR-20", "1", 4280, 4280),
    ]
    assert charge["total_amount"] == 7830
    assert services.prescription_charge(987654) is None


@pytest.mark.django_db
def test_dispensing_takes_tracked_stock_or_refuses_when_short(rx: Rx) -> None:
    from apps.pharmacy.models import Drug

    from .conftest import line

    Drug.objects.filter(code="AMLO-5").update(stock=1)
    Drug.objects.filter(code="ATOR-20").update(stock=0)
    short = create(rx, lines=[line(), line("ATOR-20", dose="20", frequency="qn")])
    enough = create(rx)
    for pid in (short, enough):
        sign_and_submit(rx, pid)
        rx.pharmacist.api().post(f"/pharmacy/prescriptions/{pid}/approve", {})
        services.prescription_mark_paid(prescription_id=pid, payment_ref=f"order-{pid}")
    r = rx.pharmacist.api().post(f"/pharmacy/prescriptions/{short}/dispense")
    assert r.status_code == 409 and r.json()["code"] == "pharmacy.out_of_stock"
    assert r.json()["detail"] == {"drug": "阿托伐他汀钙片", "drug_code": "ATOR-20", "stock": 0, "needed": 1}
    # nothing taken: the amlodipine of the refused prescription is still there
    assert Drug.objects.get(code="AMLO-5").stock == 1 and Prescription.objects.get(pk=short).status == "paid"
    assert rx.pharmacist.api().post(f"/pharmacy/prescriptions/{enough}/dispense").json()["status"] == "dispensed"
    assert Drug.objects.get(code="AMLO-5").stock == 0
