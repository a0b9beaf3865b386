"""Commerce test fixtures: a fake gateway configured as the provider, test-only
item kinds registered through the real registry (as a domain app would), a
patient account with a 就诊人, and helpers to check out and pay."""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from apps.accounts.idcard import make_id_number
from apps.accounts.models import Patient
from apps.accounts.services import patient_add
from apps.commerce import pricing, registry, services
from apps.commerce.models import Order
from apps.commerce.payments.base import get_provider
from apps.commerce.registry import ItemEvent, Quote
from apps.commerce.selectors import ledger_balance
from tests.commerce.gateway import FakeGateway
from tests.conftest import Persona, make_patient

_serial = iter(range(100, 999))

PRICES = {"test_consult": 5000, "test_tea": 3800, "test_rx": 1250, "test_group": 20000, "test_slow": 900}


@dataclass
class Shop:
    """What the test-only kinds' handlers saw (the owning app's side)."""

    paid: list[ItemEvent] = field(default_factory=list)
    refunded: list[ItemEvent] = field(default_factory=list)
    approved_rx: set[str] = field(default_factory=set)
    fail_paid: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_paid(self, item: ItemEvent) -> bool:
        if self.fail_paid:
            raise RuntimeError("owning app down")
        with self.lock:
            self.paid.append(item)
        return item.kind != "test_slow"  # a slow item is delivered later (order_item_delivered)

    def on_refunded(self, item: ItemEvent) -> bool:
        with self.lock:
            self.refunded.append(item)
        return True


@pytest.fixture
def gateway(settings: Any) -> Iterator[FakeGateway]:
    settings.PAYMENT_PROVIDERS = {"fake": {"class": "tests.commerce.gateway.FakeGateway"}}
    settings.COMMERCE_DEFAULT_PROVIDER = "fake"
    gw = get_provider("fake")
    assert isinstance(gw, FakeGateway)
    yield gw


@pytest.fixture
def shop() -> Iterator[Shop]:
    s = Shop()

    def quote(kind: str) -> Any:
        return lambda patient, ref, quantity: Quote(
            title=f"{kind}:{ref}", unit_price_fen=PRICES[kind], payer="group" if kind == "test_group" else "self"
        )

    for kind in PRICES:
        registry.register_item_kind(
            kind,
            title=kind,
            quote=quote(kind),
            on_paid=s.on_paid,
            on_refunded=s.on_refunded,
            can_checkout=(lambda p, ref, q: None if ref in s.approved_rx else "处方尚未通过药师审核")
            if kind == "test_rx"
            else None,
        )
    yield s
    for kind in PRICES:
        registry.unregister_item_kind(kind)
    for code in ("test_tea_waives_consult", "test_pkg"):
        pricing.unregister(code)


def add_patient(owner: Persona, name: str = "张三") -> Patient:
    return patient_add(
        owner=owner.user,
        name=name,
        id_number=make_id_number("440106", dt.date(1985, 3, 14), f"{next(_serial):03d}"),
        phone="",
        relation="self",
    )


@dataclass
class Buyer:
    account: Persona
    patient: Patient


@pytest.fixture
def buyer(db: Any) -> Buyer:
    account = make_patient("13900000031", "张三")
    return Buyer(account=account, patient=add_patient(account))


def checkout(buyer: Buyer, *lines: tuple[str, str, int], key: str | None = None) -> Order:
    return services.order_checkout(
        payer=buyer.account.user,
        patient_id=buyer.patient.pk,
        lines=[services.CheckoutLine(kind=k, ref=r, quantity=q) for k, r, q in lines],
        client_key=key or secrets.token_hex(8),
        channel="sandbox",
    )


def balanced(order: Order) -> dict[str, int]:
    """Assert the ledger identity of ``order`` and return its sums."""
    order.refresh_from_db()
    b = ledger_balance(order)
    assert b["balance"] == 0
    assert b["received"] == order.paid_fen - order.refunded_fen
    return b
