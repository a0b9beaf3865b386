"""Prescriptions paid through commerce (the ``prescription`` item kind): only an
approved prescription of that 就诊人 can be checked out (R6), paying it marks it paid
exactly once, a refund before dispensing stops the dispensing; the order names no drug."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from apps.commerce import services as commerce
from apps.commerce.errors import CommerceCode
from apps.commerce.models import Order, Payment
from apps.pharmacy.models import Prescription
from hub.errors import ApiError
from tests.commerce.conftest import gateway  # noqa: F401  (fixture)
from tests.conftest import make_patient

from .conftest import Rx, add_patient
from .test_flow import create, sign_and_submit

pytestmark = pytest.mark.django_db


def _checkout(rx: Rx, pid: int, *, patient_id: int | None = None, account: Any = None) -> Order:
    return commerce.order_checkout(
        payer=(account or rx.account).user,
        patient_id=patient_id or rx.me.pk,
        lines=[commerce.CheckoutLine(kind="prescription", ref=str(pid), quantity=1)],
        client_key=secrets.token_hex(8),
        channel="sandbox",
    )


def _approved(rx: Rx) -> int:
    pid = create(rx)
    sign_and_submit(rx, pid)
    assert rx.pharmacist.api().post(f"/pharmacy/prescriptions/{pid}/approve", {}).status_code == 200
    return pid


def test_only_an_approved_prescription_is_checked_out_and_nothing_is_written_otherwise(
    rx: Rx,
    gateway: Any,  # noqa: F811
) -> None:
    pid = create(rx)
    sign_and_submit(rx, pid)  # submitted, not approved
    with pytest.raises(ApiError) as exc:
        _checkout(rx, pid)
    assert exc.value.code == CommerceCode.ITEM_REFUSED and "药师审核" in exc.value.message
    # Someone else's 就诊人, or a made-up id: refused the same way.
    stranger = make_patient("13900000091", "路人")
    theirs = add_patient(stranger, "路人")
    for ref, patient_id, account in ((pid, theirs.pk, stranger), (987654, rx.me.pk, None)):
        with pytest.raises(ApiError) as exc:
            _checkout(rx, ref, patient_id=patient_id, account=account)
        assert exc.value.code == CommerceCode.ITEM_REFUSED
    assert not Order.objects.exists() and gateway.prepays == []


def test_paying_the_order_marks_the_prescription_paid_once_and_a_refund_stops_dispensing(
    rx: Rx,
    gateway: Any,  # noqa: F811
    django_capture_on_commit_callbacks: Any,
) -> None:
    pid = _approved(rx)
    order = _checkout(rx, pid)
    p = Prescription.objects.get(pk=pid)
    (item,) = order.items.all()
    assert item.title.startswith("处方药品") and order.payable_fen > 0
    for line in p.lines.all():  # the order names no drug
        assert line.drug_code not in order.title and line.drug_code not in item.title
    notice = gateway.pay(order.order_no)
    with django_capture_on_commit_callbacks(execute=True):
        commerce.payment_notice_apply(notice)
    with django_capture_on_commit_callbacks(execute=True):
        commerce.payment_notice_apply(notice)  # the gateway repeats itself
    p.refresh_from_db()
    assert p.status == Prescription.Status.PAID and p.payment_ref == order.order_no
    assert Payment.objects.filter(order=order).count() == 1
    order.refresh_from_db()
    assert order.status == Order.Status.FULFILLING  # delivered when the medicine reaches the patient

    with django_capture_on_commit_callbacks(execute=True):
        refund = commerce.order_refund_automatic(order_no=order.order_no, reason="医生停药")
    assert refund is not None
    with django_capture_on_commit_callbacks(execute=True):
        commerce.payment_notice_apply(gateway.refund_notice(refund.refund_no))
    p.refresh_from_db()
    assert p.status == Prescription.Status.REFUNDED
    r = rx.pharmacist.api().post(f"/pharmacy/prescriptions/{pid}/dispense")
    assert r.status_code == 409 and p.dispensed_at is None
